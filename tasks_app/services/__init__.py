"""Write actions, named <entity>_<verb>. Permission checks live here, so every way in (pages,
API, admin, code) gets the same rules; every action writes an audit entry."""

from ..jobs.errors import BrokerUnavailable
from ..jobs.params import ParamsError
from .common import (
    Actor,
    ServiceError,
    may_act_on_task,
    may_read_run,
    may_read_runs_of,
    readable_filter,
    require_run_read,
    require_task_permission,
    schedulable_jobs,
    unreadable_jobs,
)
from .runs import (
    BulkLimitExceeded,
    BulkOutcome,
    InvalidOptions,
    LaunchOptions,
    NotRetriable,
    job_launch,
    run_cancel,
    run_retry,
    runs_cancel_bulk,
    runs_retry_bulk,
)
from .schedules import (
    InvalidSchedule,
    schedule_delete,
    schedule_reset,
    schedule_run_now,
    schedule_save,
    schedules_toggle,
)

__all__ = [
    "Actor",
    "BrokerUnavailable",
    "BulkLimitExceeded",
    "BulkOutcome",
    "InvalidOptions",
    "InvalidSchedule",
    "LaunchOptions",
    "NotRetriable",
    "ParamsError",
    "ServiceError",
    "job_launch",
    "may_act_on_task",
    "may_read_run",
    "may_read_runs_of",
    "readable_filter",
    "require_run_read",
    "require_task_permission",
    "run_cancel",
    "run_retry",
    "runs_cancel_bulk",
    "runs_retry_bulk",
    "schedulable_jobs",
    "schedule_delete",
    "schedule_reset",
    "schedule_run_now",
    "schedule_save",
    "schedules_toggle",
    "unreadable_jobs",
]
