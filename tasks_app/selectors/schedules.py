"""Read queries about schedules: the list with next fire times and last runs, one schedule
with its recent runs and audit trail."""

from __future__ import annotations

import base64
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django_celery_beat.models import PeriodicTask

from ..jobs.registry import JobSpec, find_job, masked_params
from ..models import AuditEntry, DeclaredSchedule, MissedRunPolicy, Run, ScheduleOptions
from ..schedules.cron import CronError
from ..schedules.declared import is_edited
from ..schedules.definition import Kind, Timing, Upcoming, definition_of, timing_of, upcoming
from .audit import AuditRow, audit_rows
from .calendar_history import HistoryCell, cells_of, history_strips
from .display import json_text, json_texts

RECENT_RUNS = 25
NAME_MAX = PeriodicTask._meta.get_field("name").max_length or 200
CANNOT_FORECAST = "Cannot forecast"


@dataclass(frozen=True)
class ScheduleRow:
    task: PeriodicTask
    spec: JobSpec | None
    timing: Timing
    words: str
    upcoming: Upcoming
    last_run: Run | None
    declaration: DeclaredSchedule | None
    edited: bool
    # Its last runs, oldest first (the history strip); filled on the list page and the
    # schedule's page, empty elsewhere.
    history: tuple[HistoryCell, ...] = ()

    @property
    def editable(self) -> bool:
        return self.timing.kind is not Kind.OTHER

    @property
    def job_title(self) -> str:
        return self.spec.title if self.spec is not None else self.task.task


def _row(
    task: PeriodicTask, last_run: Run | None, marker: DeclaredSchedule | None, now: datetime | None
) -> ScheduleRow:
    timing = timing_of(task)
    return ScheduleRow(
        task=task,
        spec=find_job(task.task),
        timing=timing,
        words=_words(task, timing),
        upcoming=_upcoming(task, now),
        last_run=last_run,
        declaration=marker,
        edited=marker is not None and is_edited(task, marker),
    )


def _words(task: PeriodicTask, timing: Timing) -> str:
    if timing.kind is Kind.OTHER:
        return str(task.scheduler or "no schedule")
    try:
        return timing.in_words()
    except ValueError:  # a crontab stored by other means that we would refuse
        return f"cron {timing.cron} ({timing.timezone})"


def _upcoming(task: PeriodicTask, now: datetime | None) -> Upcoming:
    """The next fire times, or why they cannot be told: a crontab stored by older data or
    other tools (stock beat's validator accepts `0 0 30 2 *` and day of week 7) that the
    strict parser refuses must not take the page down."""
    try:
        return upcoming(task, now=now)
    except CronError as error:
        return Upcoming([], f"{CANNOT_FORECAST}: {error}")


def _listed() -> QuerySet[PeriodicTask]:
    """Schedules by name, each with the id of its last run (one subquery, by the
    `run_schedule_queued_idx` index)."""
    last_run_ids = Run.objects.filter(schedule_name=OuterRef("name")).order_by("-queued_at", "-id")
    listed: QuerySet[PeriodicTask] = (
        PeriodicTask.objects.select_related("crontab", "interval", "clocked", "solar")
        .annotate(last_run_id=Subquery(last_run_ids.values("id")[:1]))
        .order_by("name")
    )
    return listed


def schedule_rows(*, now: datetime | None = None) -> list[ScheduleRow]:
    """Every schedule, by name, with its last run (one query for all of them)."""
    return _rows(list(_listed()), now)


SCHEDULE_PAGE_SIZE = 50


@dataclass(frozen=True)
class SchedulePage:
    rows: list[ScheduleRow]
    next_cursor: str | None
    is_first: bool


def encode_schedule_cursor(name: str) -> str:
    """The cursor of the page after the schedule `name` (names are unique: the key)."""
    return base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")


def decode_schedule_cursor(cursor: str) -> str | None:
    """The name a page starts after; None for a cursor that is not one of ours."""
    try:
        name = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    # PostgreSQL text cannot hold NUL; a name longer than the column is no schedule's.
    if not name or "\x00" in name or len(name) > NAME_MAX:
        return None
    return name


def schedules_page(
    cursor: str | None = None,
    size: int = SCHEDULE_PAGE_SIZE,
    *,
    now: datetime | None = None,
    history: bool = False,
) -> SchedulePage:
    """One page of schedules by name, by keyset on the unique name (as runs page): a
    deployment with thousands of schedules costs a page, not the whole table per request.
    With `history`, each row has its history strip (one more query for the page)."""
    after = decode_schedule_cursor(cursor) if cursor else None
    tasks = _listed()
    if after is not None:
        tasks = tasks.filter(name__gt=after)
    found = list(tasks[: size + 1])
    more = len(found) > size
    found = found[:size]
    rows = _rows(found, now)
    if history:
        strips = history_strips([t.name for t in found])
        rows = [replace(row, history=strips[row.task.name]) for row in rows]
    return SchedulePage(
        rows=rows,
        next_cursor=encode_schedule_cursor(found[-1].name) if more and found else None,
        is_first=after is None,
    )


def _rows(tasks: list[PeriodicTask], now: datetime | None) -> list[ScheduleRow]:
    """Rows for `tasks` (from `_listed`): their last runs and declarations in two queries."""
    last: dict[int, int | None] = {t.pk: getattr(t, "last_run_id", None) for t in tasks}
    runs = Run.objects.in_bulk([pk for pk in last.values() if pk is not None])
    markers = {
        m.periodic_task_id: m
        for m in DeclaredSchedule.objects.filter(periodic_task__in=[t.pk for t in tasks])
    }
    return [
        _row(t, runs.get(last[t.pk]) if last[t.pk] else None, markers.get(t.pk), now) for t in tasks
    ]


@dataclass(frozen=True)
class ScheduleDetail:
    row: ScheduleRow
    recent_runs: list[Run]
    audit: list[AuditRow]
    # Whether the viewer may read the schedule's parameters: not those of a job whose
    # permission they lack (as a run's). Then `params` is empty and the page says why.
    readable: bool
    params: dict[str, Any]  # sensitive values masked
    param_texts: list[tuple[str, str]]  # the same, each value as JSON text, for the page
    declared_params_text: str  # the parameters declared in code as JSON text, if readable
    # What beat does about fires missed while it was down (ScheduleOptions; no row: run once).
    missed_policy: str = MissedRunPolicy.RUN_ONCE
    missed_policy_label: str = MissedRunPolicy.RUN_ONCE.label
    missed_cap: int | None = None  # how many missed runs "run every" sends, for that policy


def schedule_detail(
    pk: int, *, now: datetime | None = None, unreadable_jobs: Collection[str] = ()
) -> ScheduleDetail | None:
    """One schedule as a viewer who may not read the runs of `unreadable_jobs`
    (`services.unreadable_jobs`) sees it: the parameters, and the details of its audit
    entries, of such a job are left out."""
    task = (
        PeriodicTask.objects.select_related(
            "crontab", "interval", "clocked", "solar", "taskdeck_options"
        )
        .filter(pk=pk)
        .first()
    )
    if task is None:
        return None
    options: ScheduleOptions | None = getattr(task, "taskdeck_options", None)
    policy = MissedRunPolicy(options.missed_policy) if options else MissedRunPolicy.RUN_ONCE
    runs = list(
        Run.objects.filter(schedule_name=task.name).order_by("-queued_at", "-id")[:RECENT_RUNS]
    )
    marker = DeclaredSchedule.objects.filter(periodic_task=task).first()
    entries = AuditEntry.objects.filter(target_type="schedule", target_id=str(task.pk))
    readable = task.task not in unreadable_jobs
    params = _masked_params(task) if readable else {}
    return ScheduleDetail(
        row=replace(_row(task, runs[0] if runs else None, marker, now), history=cells_of(runs)),
        recent_runs=runs,
        audit=audit_rows(list(entries.order_by("-created_at", "-id")[:50]), unreadable_jobs),
        readable=readable,
        params=params,
        param_texts=json_texts(params),
        declared_params_text=_declared_params_text(marker) if readable else "",
        missed_policy=policy,
        missed_policy_label=str(policy.label),
        missed_cap=options.missed_cap if options and policy is MissedRunPolicy.RUN_ALL else None,
    )


def _masked_params(task: PeriodicTask) -> dict[str, Any]:
    params = definition_of(task).params
    return masked_params(task.task, params)


def _declared_params_text(marker: DeclaredSchedule | None) -> str:
    """The declaration's parameters as JSON text ("" when it has none, as the page showed)."""
    declared = marker.declared if marker is not None else None
    return json_text(declared.get("params", "")) if isinstance(declared, dict) else ""
