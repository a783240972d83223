"""Admin for Taskdeck's own tables: read-only, since runs change only through the lifecycle
and the audit trail is never edited. Also django-celery-results' TaskResult admin, made usable
on a table of millions of rows. django-celery-beat's PeriodicTask admin, going through the
services, is in `admin_schedules`.

Each changelist of these tables counts without scanning the table (`LargeTablePaginator`),
shows no second, unfiltered count (`show_full_result_count = False`), and searches a task id
by equality, which the unique index answers (`task_id__exact`; the admin's `=task_id` means
`UPPER(task_id) = UPPER(%s)`, which no index serves).
"""

from __future__ import annotations

import json
from typing import Any

from celery import states
from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property
from django_celery_results.admin import TaskResultAdmin as StockTaskResultAdmin
from django_celery_results.models import TaskResult

from . import admin_schedules  # noqa: F401 - registers the PeriodicTask admin
from .jobs.registry import all_jobs, masked_params
from .models import AuditEntry, Run
from .selectors.runs import HIDDEN_DETAILS, AuditRow, audit_rows
from .services import Actor, may_read_run, may_read_runs_of, unreadable_jobs


class LargeTablePaginator(Paginator):  # type: ignore[type-arg]
    """Never COUNT(*) a whole large table for a changelist page.

    Unfiltered, on PostgreSQL: the planner's row estimate (`pg_class.reltuples`, kept by
    autovacuum and ANALYZE), when it says the table holds more than CAP rows. Otherwise an exact
    count of at most CAP + 1 rows: `SELECT COUNT(*) FROM (SELECT ... LIMIT CAP + 1)`. So a
    large table's total is approximate, and a filter or search matching more than CAP rows shows
    CAP + 1 results (its later pages are still reachable one by one from "next").
    """

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not isinstance(queryset, QuerySet):
            return len(queryset)
        if not queryset.query.where:
            estimate = estimated_rows(queryset.model, queryset.db)
            if estimate is not None and estimate > self.CAP:
                return estimate
        return int(queryset.order_by()[: self.CAP + 1].count())


def estimated_rows(model: type[Model], using: str) -> int | None:
    """The planner's estimate of the table's rows (PostgreSQL); None when there is none yet."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table]
        )
        row = cursor.fetchone()
    # -1: never vacuumed or analysed.
    return int(row[0]) if row and row[0] is not None and row[0] >= 0 else None


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    paginator = LargeTablePaginator
    # No COUNT(*) over a table that may hold millions of rows.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Run)
class RunAdmin(ReadOnlyAdmin):
    list_display = ("task_id", "job_name", "state", "source", "actor_label", "queued_at")
    list_filter = ("state", "source")
    search_fields = ("task_id__exact",)
    search_help_text = "A whole task id."
    exclude = ("params",)
    readonly_fields = ("masked_params",)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A restricted job's run opens only for those with its permission (as in the
        dashboard); the list shows every row."""
        allowed = super().has_view_permission(request, obj)
        return allowed and (obj is None or may_read_run(Actor(user=request.user), obj))

    @admin.display(description="Parameters")
    def masked_params(self, run: Run) -> dict[str, Any]:
        return masked_params(run.job_name, run.params)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    """The list shows every entry (no details); an entry's page shows its details only to
    those who may read the runs of the jobs it is about, as the audit page does."""

    list_display = ("created_at", "actor_label", "action", "target_type", "target_id")
    list_filter = ("action",)
    search_fields = ("=target_id", "actor_label")
    exclude = ("details",)
    readonly_fields = ("shown_details",)

    def get_object(
        self, request: HttpRequest, object_id: str, from_field: str | None = None
    ) -> AuditEntry | None:
        """The entry, with whether this viewer may read its details (a display method is
        given the entry, not the request)."""
        entry: AuditEntry | None = super().get_object(request, object_id, from_field)
        if entry is not None:
            row = audit_rows([entry], unreadable_jobs(Actor(user=request.user)))[0]
            setattr(entry, _AUDIT_ROW, row)
        return entry

    @admin.display(description="Details")
    def shown_details(self, entry: AuditEntry) -> str:
        row = getattr(entry, _AUDIT_ROW, None)
        if not isinstance(row, AuditRow) or not row.readable:  # unknown: hidden
            return HIDDEN_DETAILS
        return json.dumps(row.details, indent=2, sort_keys=True, ensure_ascii=False)


_AUDIT_ROW = "_taskdeck_audit_row"


# --- django-celery-results' TaskResult -----------------------------------------------------


class FixedChoicesFilter(admin.SimpleListFilter):
    """A filter on one column whose choices are known in advance: no `SELECT DISTINCT` over the
    whole table (the stock admin runs one per filtered column on every page)."""

    field_name = ""

    def choices_for(self) -> list[str]:
        raise NotImplementedError

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(value, value) for value in self.choices_for()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(**{self.field_name: value}) if value else queryset


class TaskStatusFilter(FixedChoicesFilter):
    title = "status"
    parameter_name = field_name = "status"

    def choices_for(self) -> list[str]:
        return sorted(states.ALL_STATES | {"PROGRESS"})


class TaskNameFilter(FixedChoicesFilter):
    title = "job"
    parameter_name = field_name = "task_name"

    def choices_for(self) -> list[str]:
        return sorted(spec.name for spec in all_jobs() if spec.ledger)


if admin.site.is_registered(TaskResult):
    admin.site.unregister(TaskResult)


@admin.register(TaskResult)
class TaskResultAdmin(StockTaskResultAdmin):
    """The stock admin without what costs a scan of the table on every page: its two counts,
    its date hierarchy (a `SELECT DISTINCT` of dates) and the four `SELECT DISTINCT` filters;
    and its search (LIKE '%...%' on five columns) narrowed to an exact task id."""

    paginator = LargeTablePaginator
    show_full_result_count = False
    # (The stock class's attributes have narrower inferred types than ModelAdmin's.)
    date_hierarchy = None  # type: ignore[assignment]
    list_filter = (TaskStatusFilter, TaskNameFilter, "date_done")  # type: ignore[assignment]
    search_fields = ("task_id__exact",)  # type: ignore[assignment]
    search_help_text = "A whole task id."

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        """A restricted job's result, traceback and arguments: only with its permission."""
        return super().has_view_permission(request, obj) and self._readable(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._readable(request, obj)

    def _readable(self, request: HttpRequest, obj: TaskResult | None) -> bool:
        return obj is None or may_read_runs_of(Actor(user=request.user), obj.task_name or "")
