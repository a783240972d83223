"""The development stack behind `make run`: bundled Redis, worker, beat and web server."""
