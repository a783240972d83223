"""Taskdeck's admin. Django's autodiscovery imports `tasks_app.admin`, so importing each module
here registers its admins:

- `runs`: Taskdeck's runs and django-celery-results' TaskResult, read-only and cheap to page
  through on a table of millions of rows (`large_tables`).
- `audit`: the audit trail, read-only, its details shown as on the audit page.
- `schedules`: django-celery-beat's PeriodicTask, every write through the services, with the
  forms of `schedule_forms`.
- `schedule_rows`: beat's shared timing rows, view-only.
"""

from . import audit, runs, schedule_rows, schedules
from .audit import AuditEntryAdmin
from .large_tables import LargeTablePaginator, ReadOnlyAdmin, estimated_rows
from .runs import (
    FixedChoicesFilter,
    RunAdmin,
    TaskNameFilter,
    TaskResultAdmin,
    TaskStatusFilter,
)
from .schedule_forms import JobScheduleForm, PlainTaskForm, ServiceCheckedForm
from .schedule_rows import SharedScheduleRowAdmin
from .schedules import PeriodicTaskAdmin

__all__ = [
    "AuditEntryAdmin",
    "FixedChoicesFilter",
    "JobScheduleForm",
    "LargeTablePaginator",
    "PeriodicTaskAdmin",
    "PlainTaskForm",
    "ReadOnlyAdmin",
    "RunAdmin",
    "ServiceCheckedForm",
    "SharedScheduleRowAdmin",
    "TaskNameFilter",
    "TaskResultAdmin",
    "TaskStatusFilter",
    "audit",
    "estimated_rows",
    "runs",
    "schedule_rows",
    "schedules",
]
