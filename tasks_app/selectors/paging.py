"""What the keyset-paged lists share (history, audit trail), in one place so neither list's
module imports the other's."""

PAGE_SIZE = 50
