"""Read queries for the pages and the API. Nothing here writes; JSON is decoded here, once."""

from .audit import AuditPage, audit_page
from .overview import (
    HourBucket,
    StateTotals,
    active_runs,
    hourly_activity,
    latest_failures,
    state_totals,
)
from .paging import PAGE_SIZE
from .run_detail import Progress, RunDetail, RunLive, progress_of, run_detail, run_live
from .runs import (
    RunFilter,
    RunPage,
    decode_cursor,
    encode_cursor,
    runs_count_up_to,
    runs_matching,
    runs_page,
)
from .schedules import ScheduleDetail, ScheduleRow, schedule_detail, schedule_rows
from .workers import workers_snapshot

__all__ = [
    "PAGE_SIZE",
    "AuditPage",
    "HourBucket",
    "Progress",
    "RunDetail",
    "RunFilter",
    "RunLive",
    "RunPage",
    "ScheduleDetail",
    "ScheduleRow",
    "StateTotals",
    "active_runs",
    "audit_page",
    "decode_cursor",
    "encode_cursor",
    "hourly_activity",
    "latest_failures",
    "progress_of",
    "run_detail",
    "run_live",
    "runs_count_up_to",
    "runs_matching",
    "runs_page",
    "schedule_detail",
    "schedule_rows",
    "state_totals",
    "workers_snapshot",
]
