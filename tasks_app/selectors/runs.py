"""Read queries over the run history: the filters every way in shares, the search text rule,
and keyset pages of runs newest first. One run in full is in `run_detail`, the overview's
numbers in `overview`, the audit trail in `audit`."""

import base64
import re
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.utils import timezone

from ..models import Run
from .paging import PAGE_SIZE


@dataclass(frozen=True)
class RunFilter:
    """Filters over the run ledger; every field is optional and they combine with AND."""

    states: tuple[str, ...] = ()
    job_name: str = ""
    source: str = ""
    actor_label: str = ""
    schedule_name: str = ""
    since: datetime | None = None
    until: datetime | None = None
    # A task id (or its start), or a word found in the parameters.
    text: str = ""
    # Not a filter the user chose: the jobs whose runs' parameters the viewer may not read
    # (`services.readable_filter` sets it), so `text` never finds their runs by a parameter.
    unreadable_jobs: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The filters chosen, for the audit trail (the viewer's policy is not one of them)."""
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(self).items()
            if value not in ((), "", None) and key != "unreadable_jobs"
        }


def runs_matching(filters: RunFilter) -> QuerySet[Run]:
    queryset: QuerySet[Run] = Run.objects.all()
    if filters.states:
        queryset = queryset.filter(state__in=filters.states)
    if filters.job_name:
        queryset = queryset.filter(job_name=filters.job_name)
    if filters.source:
        queryset = queryset.filter(source=filters.source)
    if filters.actor_label:
        queryset = queryset.filter(actor_label=filters.actor_label)
    if filters.schedule_name:
        queryset = queryset.filter(schedule_name=filters.schedule_name)
    if filters.since is not None:
        queryset = queryset.filter(queued_at__gte=filters.since)
    if filters.until is not None:
        queryset = queryset.filter(queued_at__lt=filters.until)
    if filters.text:
        queryset = _text_search(queryset, filters.text.strip(), filters.unreadable_jobs)
    return queryset


TASK_ID_LIKE = re.compile(r"^[0-9a-fA-F-]{8,255}$")


# What a search text must hold: on PostgreSQL the parameter search is served by a trigram
# index (migration 0007), whose trigrams come from runs of letters and digits. Text without 3 in
# a row ("ab", "a-b", "5%") yields only padded or no trigrams, which match most of the ledger:
# it would read the whole table (0.9 s at 1M runs for "a-b"). The filter form and the API
# refuse such text with this message; a task id (8 hex digits or more) always qualifies.
SEARCH_TEXT = re.compile(r"[^\W_]{3}")
SEARCH_TOO_SHORT = "Type at least 3 letters or digits in a row to search."


def search_text_error(text: str) -> str | None:
    """Why `text` cannot be searched for, or None: the one rule for every way in."""
    text = text.strip()
    return SEARCH_TOO_SHORT if text and not SEARCH_TEXT.search(text) else None


def _text_search(
    queryset: QuerySet[Run], text: str, unreadable_jobs: tuple[str, ...] = ()
) -> QuerySet[Run]:
    """A task id (or its first characters) goes to the unique index; anything else is looked
    for in the parameters' JSON text, of runs of any job but `unreadable_jobs` (whose rows the
    viewer sees, but whose parameters a search must not confirm).

    The parameter search is `UPPER(params::text) LIKE UPPER('%text%')` (`icontains` escapes
    `%`, `_` and `\\` in `text`): on PostgreSQL exactly the expression of the trigram index
    `run_params_trgm_idx`, so the planner can answer it from that index (a rare or absent text)
    or walk `run_queued_idx` newest first until a page is full (a common one). `alias`, not
    `annotate`: the cast is for the filter only, not sent back with every row."""
    if TASK_ID_LIKE.match(text):
        # Celery's ids are lower-case UUIDs; a pasted one may not be.
        if len(text) == 36:
            return queryset.filter(task_id__in={text, text.lower()})
        return queryset.filter(task_id__startswith=text.lower())
    queryset = queryset.alias(params_text=Cast("params", TextField())).filter(
        params_text__icontains=text
    )
    # A separate condition, so the trigram index's expression above stays exactly as it is.
    return queryset.exclude(job_name__in=unreadable_jobs) if unreadable_jobs else queryset


@dataclass(frozen=True)
class RunPage:
    runs: list[Run]
    next_cursor: str | None
    is_first: bool


def encode_cursor(run: Run) -> str:
    raw = f"{run.queued_at.isoformat()}|{run.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    """The (queued_at, id) a page starts after; None for a cursor that is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, pk = raw.split("|")
        parsed = datetime.fromisoformat(when)
        if timezone.is_naive(parsed):
            return None
        parsed.astimezone(UTC)  # a made-up time with no UTC value cannot be queried
        return parsed, int(pk)
    except (ValueError, UnicodeDecodeError, OverflowError):
        return None


def runs_page(filters: RunFilter, cursor: str | None = None, size: int = PAGE_SIZE) -> RunPage:
    """One page of runs, newest first, by keyset: no OFFSET, no COUNT(*), however deep."""
    queryset = runs_matching(filters).order_by("-queued_at", "-id").select_related(None)
    after = decode_cursor(cursor) if cursor else None
    if after is not None:
        when, pk = after
        # `queued_at <= x` bounds the index scan; the OR only sorts out ties on x.
        queryset = queryset.filter(queued_at__lte=when).filter(Q(queued_at__lt=when) | Q(id__lt=pk))
    rows = list(queryset.defer("log", "args")[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return RunPage(
        runs=rows,
        next_cursor=encode_cursor(rows[-1]) if more and rows else None,
        is_first=after is None,
    )


def runs_count_up_to(filters: RunFilter, limit: int) -> int:
    """How many runs match, counting at most `limit + 1` rows (to say "more than limit")."""
    return runs_matching(filters).order_by()[: limit + 1].count()


def run_filter_from_dict(data: dict[str, Any]) -> RunFilter:
    """The filter `RunFilter.as_dict()` stored (a bulk operation's), back as a RunFilter."""

    def moment(value: Any) -> datetime | None:
        return datetime.fromisoformat(value) if isinstance(value, str) and value else None

    return RunFilter(
        states=tuple(str(state) for state in data.get("states") or ()),
        job_name=str(data.get("job_name") or ""),
        source=str(data.get("source") or ""),
        actor_label=str(data.get("actor_label") or ""),
        schedule_name=str(data.get("schedule_name") or ""),
        since=moment(data.get("since")),
        until=moment(data.get("until")),
        text=str(data.get("text") or ""),
    )


def latest_run_id() -> int:
    """The newest run's id (0 with none): a bulk operation's matching set stops there."""
    return int(Run.objects.order_by("-id").values_list("id", flat=True).first() or 0)


def runs_actionable(
    filters: RunFilter,
    states: frozenset[str],
    *,
    up_to_id: int,
    finished_by: datetime | None = None,
) -> QuerySet[Run]:
    """The runs a bulk operation acts on: matching `filters`, in `states` (within the states
    the filter asks for, if any), no newer than `up_to_id` and, for final states, finished by
    `finished_by`: a run still running when the operation was requested is not in its set
    even if it fails later. Unordered."""
    wanted = sorted(set(filters.states) & states if filters.states else states)
    queryset = runs_matching(replace(filters, states=())).filter(state__in=wanted, id__lte=up_to_id)
    if finished_by is not None:  # (a final run with no finish time is an old one)
        queryset = queryset.filter(Q(finished_at__lte=finished_by) | Q(finished_at__isnull=True))
    return queryset.order_by()


def runs_actionable_count(
    filters: RunFilter,
    states: frozenset[str],
    *,
    up_to_id: int,
    finished_by: datetime | None = None,
) -> int:
    return runs_actionable(filters, states, up_to_id=up_to_id, finished_by=finished_by).count()


# What a bulk operation reads of each run it acts on (not the log, result or artifact).
BATCH_FIELDS = ("id", "task_id", "job_name", "state", "params", "args", "queue", "root")


def runs_batch_after(
    filters: RunFilter,
    states: frozenset[str],
    *,
    after_id: int,
    up_to_id: int,
    size: int,
    finished_by: datetime | None = None,
) -> list[Run]:
    """The next `size` actionable runs after `after_id`, by id: a keyset page (no OFFSET), so
    each batch starts where the last stopped however far in, and a run is read once."""
    queryset = runs_actionable(filters, states, up_to_id=up_to_id, finished_by=finished_by)
    return list(queryset.filter(id__gt=after_id).order_by("id").only(*BATCH_FIELDS)[:size])


def runs_batch_before(
    filters: RunFilter,
    states: frozenset[str],
    *,
    up_to_id: int,
    size: int,
    finished_by: datetime | None = None,
) -> list[int]:
    """The ids of the last `size` actionable runs up to `up_to_id`: the batch a bulk
    operation handled last before it was interrupted (a superset of it)."""
    queryset = runs_actionable(filters, states, up_to_id=up_to_id, finished_by=finished_by)
    return list(queryset.order_by("-id").values_list("id", flat=True)[:size])
