"""Runs: Taskdeck's Run (read-only) and django-celery-results' TaskResult (the stock admin
made usable on a table of millions of rows). A restricted job's run or result opens only for
those with its permission, as in the dashboard; the lists show every row."""

from __future__ import annotations

from typing import Any

from celery import states
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django_celery_results.admin import TaskResultAdmin as StockTaskResultAdmin
from django_celery_results.models import TaskResult

from ..jobs.registry import all_jobs, masked_params
from ..models import Run
from ..services import Actor, may_read_run, may_read_runs_of
from .large_tables import LargeTablePaginator, ReadOnlyAdmin


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
