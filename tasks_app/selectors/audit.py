"""The audit trail as one viewer may see it: every entry's who, what and which target, and
its details only to those who may read the runs of every job it is about."""

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django_celery_beat.models import PeriodicTask

from ..models import AuditEntry, Run
from .display import json_text
from .paging import PAGE_SIZE

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
    def details_text(self) -> str:
        """The details as JSON text for the page; empty when they are hidden."""
        return json_text(self.details) if self.readable else ""

    @property
    def changes(self) -> list[tuple[str, str, str]]:
        """(field, before, after) as JSON text, for an entry that records both sides (a
        schedule's create, edit or delete); none when the details are hidden."""
        details = self.details if isinstance(self.details, dict) else {}
        before = details.get("before") or {}
        after = details.get("after") or {}
        if not isinstance(before, dict) or not isinstance(after, dict):
            return []
        keys = list(after) + [key for key in before if key not in after]
        return [(key, json_text(before.get(key)), json_text(after.get(key))) for key in keys]

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
