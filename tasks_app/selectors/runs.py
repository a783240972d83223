"""Read queries about runs and the audit trail: history with filters and keyset pages, stats,
one run live or in full."""

import base64
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet, TextField
from django.db.models.functions import Cast, TruncHour
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from ..jobs.registry import find_job, masked_params
from ..models import ACTIVE_STATES, AuditEntry, Run, RunState


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
    queryset = Run.objects.all()
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


PAGE_SIZE = 50


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


# --- overview -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StateTotals:
    label: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def state_totals(*, hours: int, label: str) -> StateTotals:
    since = timezone.now() - timedelta(hours=hours)
    rows = Run.objects.filter(queued_at__gte=since).values("state").annotate(n=Count("id"))
    return StateTotals(label, {row["state"]: row["n"] for row in rows.order_by()})


@dataclass(frozen=True)
class HourBucket:
    start: datetime
    runs: int
    failures: int


def hourly_activity(hours: int = 24) -> list[HourBucket]:
    """Runs queued per hour and how many of them failed, oldest first, gaps filled with 0."""
    now = timezone.localtime()
    first = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    rows = (
        Run.objects.filter(queued_at__gte=first)
        .annotate(hour=TruncHour("queued_at"))
        .values("hour")
        .annotate(
            runs=Count("id"),
            failures=Count("id", filter=Q(state__in=[RunState.FAILURE, RunState.LOST])),
        )
        .order_by()
    )
    by_hour = {timezone.localtime(row["hour"]): row for row in rows}
    buckets = []
    for i in range(hours):
        start = first + timedelta(hours=i)
        row = by_hour.get(start, {})
        buckets.append(HourBucket(start, row.get("runs", 0), row.get("failures", 0)))
    return buckets


def active_runs(limit: int = 20) -> list[Run]:
    return list(
        Run.objects.filter(state__in=sorted(ACTIVE_STATES))
        .order_by("-queued_at", "-id")
        .defer("log", "args")[:limit]
    )


def latest_failures(limit: int = 10) -> list[Run]:
    return list(
        Run.objects.filter(state__in=[RunState.FAILURE, RunState.LOST])
        .order_by("-queued_at", "-id")
        .defer("log", "args")[:limit]
    )


# --- run detail ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    done: int | None
    total: int | None
    message: str
    percent: int | None
    eta_seconds: int | None


def progress_of(run: Run) -> Progress:
    done, total = run.progress_done, run.progress_total
    percent = None
    eta = None
    if done is not None and total:
        percent = max(0, min(100, int(done * 100 / total)))
        if run.state == RunState.SUCCESS:
            percent = 100
        elif run.started_at and run.progress_at and done > 0:
            elapsed = (run.progress_at - run.started_at).total_seconds()
            eta = max(0, int(elapsed / done * (total - done)))
    elif run.state == RunState.SUCCESS:
        percent = 100
    return Progress(done, total, run.progress_message, percent, eta if run.is_active else None)


@dataclass(frozen=True)
class RunDetail:
    run: Run
    title: str
    params: dict[str, Any]
    result: str | None  # pretty JSON, for the page
    result_data: Any  # the decoded value, for the API
    traceback: str
    progress: Progress
    chain: list[Run]
    retried_by: list[Run]
    audit: list[AuditEntry]
    duration_seconds: float | None
    schedule_id: int | None  # the schedule that fired it, while it exists


@dataclass(frozen=True)
class RunLive:
    """What the live region of a run's page needs: its poll reads one row."""

    run: Run
    progress: Progress


def run_live(task_id: str) -> RunLive | None:
    run = Run.objects.filter(task_id=task_id).defer("log", "args", "params").first()
    return None if run is None else RunLive(run, progress_of(run))


def run_detail(task_id: str) -> RunDetail | None:
    run = Run.objects.select_related("retry_of", "root").filter(task_id=task_id).first()
    if run is None:
        return None
    spec = find_job(run.job_name)
    stored = TaskResult.objects.filter(task_id=task_id).values("result", "traceback").first()
    result, result_data = None, None
    if stored and stored["result"] is not None and run.state == RunState.SUCCESS:
        result, result_data = _pretty_json(stored["result"])
    root_id = run.root_id or run.pk
    chain = list(
        Run.objects.filter(Q(pk=root_id) | Q(root_id=root_id))
        .order_by("queued_at", "id")
        .only("task_id", "state", "queued_at", "retry_of_id", "job_name")[:50]
    )
    duration = None
    if run.started_at and run.finished_at:
        duration = (run.finished_at - run.started_at).total_seconds()
    return RunDetail(
        run=run,
        title=spec.title if spec else run.job_name,
        params=masked_params(run.job_name, run.params),
        result=result,
        result_data=result_data,
        traceback=str(stored["traceback"] or "") if stored else "",
        progress=progress_of(run),
        chain=chain,
        retried_by=list(run.retried_by.order_by("queued_at").only("task_id", "state", "queued_at")),
        audit=list(
            AuditEntry.objects.filter(target_type="run", target_id=task_id).order_by("created_at")[
                :100
            ]
        ),
        duration_seconds=duration,
        schedule_id=_schedule_id(run.schedule_name),
    )


def _schedule_id(name: str) -> int | None:
    if not name:
        return None
    return PeriodicTask.objects.filter(name=name).values_list("pk", flat=True).first()


def _pretty_json(raw: str) -> tuple[str, Any]:
    """The stored JSON result indented for reading, and decoded."""
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return raw, raw
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False), value


# --- audit --------------------------------------------------------------------------------

# What a page shows instead of the details of an entry about a job the viewer may not read.
HIDDEN_DETAILS = "Hidden: needs this job's permission"
_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits that fit a 64-bit id ("²".isdigit() is true)
_CHUNK = 500  # task ids per query: a bulk retry's entry names up to TASKDECK_BULK_LIMIT


@dataclass(frozen=True)
class AuditRow:
    """An audit entry as one viewer may see it: who did what to which target, always; its
    details (a launch's parameters, a schedule's values before and after) only when the viewer
    may read the runs of every job the entry is about."""

    entry: AuditEntry
    readable: bool

    @property
    def details(self) -> Any:
        """The details, or None when they are hidden."""
        return self.entry.details if self.readable else None

    @property
    def target_name(self) -> str:
        """A schedule's name, for the target column (every staff user sees schedule names)."""
        details = self.entry.details
        name = details.get("name") if isinstance(details, dict) else None
        return name if isinstance(name, str) else ""


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditRow]
    next_cursor: str | None


def audit_page(
    cursor: str | None = None, size: int = PAGE_SIZE, *, unreadable_jobs: Collection[str] = ()
) -> AuditPage:
    """Entries newest first, each readable or not for a viewer who may not read the runs of
    `unreadable_jobs` (`services.unreadable_jobs`)."""
    queryset = AuditEntry.objects.order_by("-id")
    # ASCII digits that fit a 64-bit id: "²".isdigit() is true but int() refuses it, and a
    # longer number overflows the database's integer (or int()'s digit limit).
    if cursor and _ID.fullmatch(cursor):
        queryset = queryset.filter(id__lt=int(cursor))
    rows = list(queryset[: size + 1])
    more = len(rows) > size
    rows = rows[:size]
    return AuditPage(audit_rows(rows, unreadable_jobs), str(rows[-1].pk) if more and rows else None)


def audit_rows(entries: Sequence[AuditEntry], unreadable_jobs: Collection[str]) -> list[AuditRow]:
    """`entries` with whether a viewer who may not read the runs of `unreadable_jobs` may see
    their details. An entry is about the jobs its details name (a launch's or retry's "job", a
    schedule snapshot's, a bulk retry's filter), the jobs of the runs it names (its target run,
    a bulk retry's retried and skipped runs), and, for a schedule, every job the schedule has
    launched (now or in its audited history); a schedule whose job cannot be told is hidden.
    No query at all for a viewer who may read everything."""
    unreadable = frozenset(unreadable_jobs)
    if not unreadable:
        return [AuditRow(entry, True) for entry in entries]
    hidden: set[int] = set()
    named_runs: dict[int, set[str]] = {}
    for entry in entries:
        if _named_jobs(entry.details) & unreadable:
            hidden.add(entry.pk)
        else:
            named_runs[entry.pk] = _named_runs(entry)
    restricted = _runs_of(set().union(*named_runs.values()), unreadable)
    hidden.update(pk for pk, task_ids in named_runs.items() if task_ids & restricted)
    schedules = _schedule_jobs({e.target_id for e in entries if e.target_type == "schedule"})
    for entry in entries:
        if entry.target_type == "schedule":
            jobs = schedules.get(entry.target_id, set())
            if not jobs or jobs & unreadable:
                hidden.add(entry.pk)
    return [AuditRow(entry, entry.pk not in hidden) for entry in entries]


def _named_jobs(details: Any) -> set[str]:
    """The job names an entry's details hold (services and the reaper write these keys)."""
    if not isinstance(details, dict):
        return set()
    named = [details.get("job")]
    for side in ("before", "after"):  # schedule snapshots
        snapshot = details.get(side)
        if isinstance(snapshot, dict):
            named.append(snapshot.get("job"))
    filters = details.get("filters")  # a bulk retry by filter
    if isinstance(filters, dict):
        named.append(filters.get("job_name"))
    return {name for name in named if isinstance(name, str) and name}


def _named_runs(entry: AuditEntry) -> set[str]:
    """The task ids of the runs an entry is about: its target and those its details name."""
    task_ids = {entry.target_id} if entry.target_type == "run" and entry.target_id else set()
    details = entry.details if isinstance(entry.details, dict) else {}
    for key in ("retry_of", "run"):
        if isinstance(value := details.get(key), str):
            task_ids.add(value)
    if isinstance(retried := details.get("retried"), list):
        task_ids.update(value for value in retried if isinstance(value, str))
    if isinstance(skipped := details.get("skipped"), dict):
        task_ids.update(skipped)
    return task_ids


def _runs_of(task_ids: set[str], jobs: frozenset[str]) -> set[str]:
    """Those of `task_ids` whose runs are of one of `jobs`."""
    ordered = sorted(task_ids)
    found: set[str] = set()
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        found.update(
            Run.objects.filter(task_id__in=chunk, job_name__in=sorted(jobs)).values_list(
                "task_id", flat=True
            )
        )
    return found


def _schedule_jobs(target_ids: set[str]) -> dict[str, set[str]]:
    """Every job each schedule (by audit target id) launches now or launched before an audited
    change of job, so a deleted schedule, or one moved to another job, keeps its old entries
    as private as they were."""
    if not target_ids:
        return {}
    jobs: dict[str, set[str]] = {target_id: set() for target_id in target_ids}
    # The services write str(pk); "07" names no schedule.
    pks = [int(t) for t in target_ids if _ID.fullmatch(t) and str(int(t)) == t]
    for pk, task in PeriodicTask.objects.filter(pk__in=pks).values_list("pk", "task"):
        jobs[str(pk)].add(task)
    # Only the entries that record a job: a create, a delete, an edit that changed the job.
    history = AuditEntry.objects.filter(target_type="schedule", target_id__in=sorted(target_ids))
    with_job = history.filter(Q(details__before__has_key="job") | Q(details__after__has_key="job"))
    for target_id, details in with_job.values_list("target_id", "details"):
        jobs[target_id] |= _named_jobs(details)
    return jobs
