"""UI forms: the runs filter, launch options, run actions, and the schedule editor."""

from .runs import BulkActionForm, CancelForm, LaunchOptionsForm, RunFilterForm
from .schedules import ScheduleBulkForm, ScheduleForm, job_params_form

__all__ = [
    "BulkActionForm",
    "CancelForm",
    "LaunchOptionsForm",
    "RunFilterForm",
    "ScheduleBulkForm",
    "ScheduleForm",
    "job_params_form",
]
