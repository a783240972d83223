"""Rule evaluation. (Being written: see issue 13.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any


def on_run_final(task_id: str, state: str) -> None:
    """Called by the worker runtime right after a run became FAILURE or LOST."""


def evaluate_all(now: datetime | None = None) -> dict[str, Any]:
    """One pass of every enabled rule (deadlines, missed schedules, streaks), resolutions and
    throttled messages; returns counts for the job's result."""
    return {}
