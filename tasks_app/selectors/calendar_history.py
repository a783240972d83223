"""The history strip: each schedule's last runs as a row of small cells, for a whole page of
schedules in one query that reads only a few columns by the (schedule_name, -queued_at, -id)
index, however many millions of runs the ledger holds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models.expressions import Col

from ..models import Run, RunState

STRIP_LENGTH = 20
# SQLite refuses a compound SELECT of more than 500 parts (SQLITE_MAX_COMPOUND_SELECT).
_SQLITE_CHUNK = 400

# The strip's six colours; several states share one (both running states, both waiting ones).
_KINDS: dict[str, str] = {
    RunState.SUCCESS: "success",
    RunState.FAILURE: "failure",
    RunState.LOST: "lost",
    RunState.REVOKED: "cancelled",
    RunState.STARTED: "running",
    RunState.PROGRESS: "running",
    RunState.PENDING: "queued",
    RunState.RETRY: "queued",
}

_GLYPHS: dict[str, str] = {
    "success": "✓",
    "failure": "✕",
    "lost": "?",
    "cancelled": "⊘",
    "running": "▸",
    "queued": "·",
}

# The index's order, newest first, per schedule: LIMIT stops each one after `length` rows.
_LATERAL = (
    "SELECT r.id, r.task_id, r.state, r.queued_at, n.name AS schedule_name"
    " FROM unnest(%s::varchar[]) AS n(name) CROSS JOIN LATERAL ("
    " SELECT id, task_id, state, queued_at FROM {table}"
    " WHERE schedule_name = n.name ORDER BY queued_at DESC, id DESC LIMIT %s) r"
)
_LIMITED = (
    "SELECT * FROM (SELECT id, task_id, state, queued_at, schedule_name FROM {table}"
    " WHERE schedule_name = %s ORDER BY queued_at DESC, id DESC LIMIT %s)"
)


@dataclass(frozen=True)
class HistoryCell:
    """One run in a strip: enough to colour it, label it and link to it."""

    task_id: str
    state: str
    queued_at: datetime

    @property
    def kind(self) -> str:
        return _KINDS.get(self.state, "queued")

    @property
    def glyph(self) -> str:
        """A mark besides the colour, so the strip reads without colour too."""
        return _GLYPHS[self.kind]

    @property
    def label(self) -> str:
        try:
            return str(RunState(self.state).label)
        except ValueError:
            return self.state


def _time_reader() -> Callable[[Any], datetime]:
    """Reads the database's `queued_at` as the ORM does (SQLite keeps text): the strip takes
    tuples from a cursor, as a model instance per cell would cost ten times the SQL."""
    field = Run._meta.get_field("queued_at")
    column = Col(Run._meta.db_table, field)
    converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)

    def read(value: Any) -> datetime:
        for convert in converters:
            value = convert(value, column, connection)
        assert isinstance(value, datetime)
        return value

    return read


def cells_of(runs: Sequence[Run]) -> tuple[HistoryCell, ...]:
    """A strip from runs already loaded newest first (the schedule page's recent runs)."""
    return tuple(
        HistoryCell(r.task_id, r.state, r.queued_at) for r in reversed(runs[:STRIP_LENGTH])
    )


def history_strips(
    names: Sequence[str], length: int = STRIP_LENGTH
) -> dict[str, tuple[HistoryCell, ...]]:
    """The last `length` runs of each schedule in `names`, oldest first, in one query (per 400
    names on SQLite): on PostgreSQL a LATERAL join of the names with an index-ordered LIMIT;
    elsewhere a UNION ALL of one such LIMIT per name. Never a scan of a schedule's history."""
    wanted = list(dict.fromkeys(n for n in names if n))
    found: dict[str, list[tuple[datetime, int, HistoryCell]]] = {name: [] for name in wanted}
    if not wanted or length <= 0:
        return dict.fromkeys(names, ())
    table = connection.ops.quote_name(Run._meta.db_table)
    if connection.vendor == "postgresql":
        chunks = [wanted]
    else:
        chunks = [wanted[i : i + _SQLITE_CHUNK] for i in range(0, len(wanted), _SQLITE_CHUNK)]
    read = _time_reader()
    for chunk in chunks:
        # Only the quoted table name is formatted in; every value is a parameter.
        if connection.vendor == "postgresql":
            sql = _LATERAL.format(table=table)
            params: list[Any] = [chunk, length]
        else:
            sql = " UNION ALL ".join([_LIMITED.format(table=table)] * len(chunk))
            params = [value for name in chunk for value in (name, length)]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        for pk, task_id, state, queued, name in rows:
            at = read(queued)
            found[name].append((at, pk, HistoryCell(task_id, state, at)))
    # Oldest first, by the index's order (neither join promises an order of its rows).
    return {name: tuple(c for *_, c in sorted(found.get(name, []))) for name in names}
