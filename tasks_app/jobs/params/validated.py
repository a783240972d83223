"""`ValidatedParams`: a job's kwargs that its schema has already checked, so a launch validates
them once.

A launch is validated where it comes in (the page's form, the API, a schedule) and then goes
down the service and enqueue path, which validates again because it cannot trust its caller.
`ParamSchema.validate` (and `validate_form`) answer this marked dict, and `validate` gives it
back as it is when it is the same job's and unchanged since: the second check costs nothing and
the value (sensitive ones sealed once) is exactly the one that was checked. Only the schema
creates the marker; any other dict, or one changed after the check, is validated as before.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class ValidatedParams(dict[str, Any]):
    """JSON kwargs as `ParamSchema.validate` answered them for the job named `job`."""

    def __init__(self, values: Mapping[str, Any], *, job: str) -> None:
        super().__init__(values)
        self.job = job
        # The exact JSON that was checked: a change since (even inside a list) is caught.
        self._checked = json.dumps(self)

    def checked_for(self, job: str) -> bool:
        """Whether these are `job`'s kwargs exactly as validated. A schema without a job name
        never matches: two unnamed schemas could accept different values."""
        if not job or job != self.job:
            return False
        try:
            return json.dumps(self) == self._checked
        except (TypeError, ValueError):  # something put in since that JSON cannot carry
            return False
