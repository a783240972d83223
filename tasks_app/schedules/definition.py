"""A schedule as an operator edits it, and the django-celery-beat rows it becomes.

The names live in three modules with one job each: `values` (the definition itself), `rows`
(reading and writing beat's rows) and `forecast` (the next fire times). This module re-exports
them so `tasks_app.schedules.definition` stays the one place callers import from.
"""

from __future__ import annotations

from .forecast import Upcoming, forecast, upcoming
from .rows import definition_of, fresh_last_run, schedule_row_ids, snapshot, timing_of, write
from .values import PERIODS, Kind, ScheduleDefinition, Timing

__all__ = [
    "PERIODS",
    "Kind",
    "ScheduleDefinition",
    "Timing",
    "Upcoming",
    "definition_of",
    "forecast",
    "fresh_last_run",
    "schedule_row_ids",
    "snapshot",
    "timing_of",
    "upcoming",
    "write",
]
