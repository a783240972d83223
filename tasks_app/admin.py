"""Admin for Taskdeck's own tables: read-only, since runs change only through the lifecycle
and the audit trail is never edited."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .jobs.registry import find_job
from .models import AuditEntry, Run


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
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
    search_fields = ("=task_id",)
    exclude = ("params",)
    readonly_fields = ("masked_params",)

    @admin.display(description="Parameters")
    def masked_params(self, run: Run) -> dict[str, Any]:
        spec = find_job(run.job_name)
        return spec.mask(run.params) if spec else run.params


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_label", "action", "target_type", "target_id")
    list_filter = ("action",)
    search_fields = ("=target_id", "actor_label")
