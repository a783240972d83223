"""The audit trail, read-only: it is never edited. Its details are shown as on the audit page,
only to those who may read the runs of the jobs an entry is about."""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest

from ..models import AuditEntry
from ..selectors.audit import HIDDEN_DETAILS, AuditRow, audit_rows
from ..services import Actor, unreadable_jobs
from .large_tables import ReadOnlyAdmin

# Where get_object leaves the entry's row for `shown_details`.
_AUDIT_ROW = "_taskdeck_audit_row"


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
