"""Taskdeck's admin. Django's autodiscovery imports `tasks_app.admin`, so importing each module
here registers its admins:

- `runs`: Taskdeck's runs and django-celery-results' TaskResult, read-only and cheap to page
  through on a table of millions of rows (`large_tables`).
- `audit`: the audit trail, read-only, its details shown as on the audit page.
- `schedules`: django-celery-beat's PeriodicTask, every write through the services, with the
  forms of `schedule_forms`.
- `schedule_rows`: beat's shared timing rows, view-only.
- `alerts`: alert rules and channels, every write through the services (a channel's secret
  shown once, its URL masked); alerts and deliveries read-only.
"""

from . import alerts, audit, runs, schedule_rows, schedules
from .alerts import AlertChannelAdmin, AlertRuleAdmin
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
    "AlertChannelAdmin",
    "AlertRuleAdmin",
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
    "alerts",
    "audit",
    "estimated_rows",
    "runs",
    "schedule_rows",
    "schedules",
]
