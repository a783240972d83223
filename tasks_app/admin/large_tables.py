"""What every changelist of a large table uses: a count that never scans the table
(`LargeTablePaginator`), and no second, unfiltered count (`show_full_result_count = False`).

Such changelists also search a task id by equality, which the unique index answers
(`task_id__exact`; the admin's `=task_id` means `UPPER(task_id) = UPPER(%s)`, which no index
serves).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.functional import cached_property


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
    """Taskdeck's own tables are read-only here: runs change only through the lifecycle and
    the audit trail is never edited."""

    paginator = LargeTablePaginator
    # No COUNT(*) over a table that may hold millions of rows.
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
