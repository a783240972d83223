"""A schedule as an operator edits it, and the django-celery-beat rows it becomes.

Beat reads `PeriodicTask` plus one schedule row (crontab, interval or clocked). Schedule rows
can be shared by several tasks, so an edit never changes one in place: it points the task at
the row for the new values (found or created).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
)

from ..jobs.registry import masked_params
from .cron import CronExpression, FireTime, describe, dst_note, next_fire_times, parse_cron

__all__ = [
    "PERIODS",
    "Kind",
    "ScheduleDefinition",
    "Timing",
    "Upcoming",
    "definition_of",
    "forecast",
    "fresh_last_run",
    "schedule_row_ids",
    "snapshot",
    "timing_of",
    "upcoming",
    "write",
]


class Kind(StrEnum):
    CRONTAB = "crontab"
    INTERVAL = "interval"
    ONE_OFF = "one_off"
    OTHER = "other"  # solar, or no schedule row: shown, not editable here


# Beat's own period names, in the order the editor offers them.
PERIODS: Final = ("seconds", "minutes", "hours", "days")
_PERIOD_SECONDS: Final = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


@dataclass(frozen=True)
class Timing:
    """When a schedule fires. `timezone` is the crontab's zone; for the other kinds it is only
    the zone the times are shown (and, for a one-off, were entered) in."""

    kind: Kind
    cron: str = ""
    timezone: str = "UTC"
    every: int = 0
    period: str = "minutes"
    run_at: datetime | None = None

    def expression(self) -> CronExpression:
        return parse_cron(self.cron)

    def step(self) -> timedelta:
        return timedelta(seconds=self.every * _PERIOD_SECONDS[self.period])

    def in_words(self) -> str:
        if self.kind is Kind.CRONTAB:
            return f"{describe(self.expression())} ({self.timezone})"
        if self.kind is Kind.INTERVAL:
            unit = self.period[:-1] if self.every == 1 else self.period
            return f"Every {self.every} {unit}" if self.every != 1 else f"Every {unit}"
        if self.kind is Kind.ONE_OFF and self.run_at is not None:
            local = timezone.localtime(self.run_at, _zone_or_default(self.timezone))
            return f"Once, at {local:%Y-%m-%d %H:%M %Z}"
        return "A schedule this dashboard cannot edit"


@dataclass(frozen=True)
class ScheduleDefinition:
    """Everything the editor sets on a PeriodicTask. `params` are the job's JSON kwargs."""

    name: str
    job: str
    timing: Timing
    params: dict[str, Any] = field(default_factory=dict)
    args: list[Any] = field(default_factory=list)  # plain (non-@job) tasks only
    description: str = ""
    enabled: bool = True
    start_time: datetime | None = None
    expires: datetime | None = None
    one_off: bool = False
    queue: str = ""
    priority: int | None = None


def timing_of(task: PeriodicTask) -> Timing:
    """The timing of a stored schedule, for the editor and the list."""
    if task.crontab is not None:
        row = task.crontab
        expr = " ".join(
            (row.minute, row.hour, row.day_of_month, row.month_of_year, row.day_of_week)
        )
        return Timing(Kind.CRONTAB, cron=expr, timezone=str(row.timezone))
    zone = timezone.get_current_timezone_name()
    if task.interval is not None:
        interval = task.interval
        return Timing(Kind.INTERVAL, every=interval.every, period=interval.period, timezone=zone)
    if task.clocked is not None:
        return Timing(Kind.ONE_OFF, run_at=task.clocked.clocked_time, timezone=zone)
    return Timing(Kind.OTHER, timezone=zone)


def definition_of(task: PeriodicTask) -> ScheduleDefinition:
    params, args = _loads(task.kwargs, {}), _loads(task.args, [])
    return ScheduleDefinition(
        name=task.name,
        job=task.task,
        timing=timing_of(task),
        params=params if isinstance(params, dict) else {},  # beat refuses such rows too
        args=args if isinstance(args, list) else [],
        description=task.description,
        enabled=task.enabled,
        start_time=task.start_time,
        expires=task.expires,
        one_off=task.one_off,
        queue=task.queue or "",
        priority=task.priority,
    )


def write(definition: ScheduleDefinition, task: PeriodicTask | None = None) -> PeriodicTask:
    """Create or update the PeriodicTask (call inside a transaction). Saving it signals beat."""
    task = task if task is not None else PeriodicTask()
    task.name = definition.name
    task.task = definition.job
    task.kwargs = json.dumps(definition.params)
    task.args = json.dumps(definition.args)
    task.description = definition.description
    task.start_time = definition.start_time
    task.expires = definition.expires
    task.queue = definition.queue or None
    task.priority = definition.priority
    new = task._state.adding
    rows_before = schedule_row_ids(task)
    task.interval = task.crontab = task.clocked = None
    task.solar = None
    timing = definition.timing
    if timing.kind is Kind.CRONTAB:
        expr = timing.expression()
        task.crontab = _shared_row(
            CrontabSchedule,
            minute=expr.minute,
            hour=expr.hour,
            day_of_month=expr.day_of_month,
            month_of_year=expr.month_of_year,
            day_of_week=expr.day_of_week,
            timezone=timing.timezone,
        )
    elif timing.kind is Kind.INTERVAL:
        task.interval = _shared_row(IntervalSchedule, every=timing.every, period=timing.period)
    elif timing.kind is Kind.ONE_OFF and timing.run_at is not None:
        task.clocked = _shared_row(ClockedSchedule, clocked_time=timing.run_at)
    else:
        raise ValueError(f"Cannot store a schedule of kind {timing.kind}")
    # A clocked schedule fires once by definition (beat refuses it otherwise).
    task.one_off = definition.one_off or timing.kind is Kind.ONE_OFF
    fields = list(_EDITED_FIELDS)
    if task.enabled != definition.enabled or new:
        task.enabled = definition.enabled
        # Paused or re-enabled: count from now, as beat does for a fresh row, and let a
        # run-once schedule that already fired fire again.
        task.last_run_at = fresh_last_run(definition)
        task.total_run_count = 0
        fields += ["enabled", "last_run_at", "total_run_count"]
    elif schedule_row_ids(task) != rows_before or (
        definition.start_time is not None and definition.start_time > timezone.now()
    ):
        # New timing (or a new start time): count from now (or the start), not from a last
        # run under the old timing, which beat would take as overdue and fire at once.
        task.last_run_at = fresh_last_run(definition)
        fields.append("last_run_at")
    if new:
        task.save()  # type: ignore[no-untyped-call]  # django-celery-beat has no hints
    else:
        # Only what the editor changes: beat writes last_run_at and the run count meanwhile.
        task.save(update_fields=fields)  # type: ignore[no-untyped-call]
    return task


def fresh_last_run(
    definition: ScheduleDefinition, *, now: datetime | None = None
) -> datetime | None:
    """The last_run_at to store so beat's first fire is the schedule's first time after now
    (or at or after a future start time). Left empty, beat (ModelEntry) counts a row from its
    date_changed, so the caller must save that as now; but for one with a start time it
    backdates the last run by 30 years, so the first check after the start fires at once, off
    the schedule: with a start time, the count's origin is stored instead. (Beat ignores
    last_run_at for a one-off, clocked schedule: it fires when its time has come.)"""
    start = definition.start_time
    now = now or timezone.now()
    if start is None:
        return None
    if start <= now:
        return now
    if definition.timing.kind is Kind.INTERVAL:
        return start - definition.timing.step()
    return start - timedelta(seconds=1)


def schedule_row_ids(task: PeriodicTask) -> tuple[int | None, ...]:
    """Which beat schedule rows `task` uses: a change of them is a change of its timing
    (shared rows themselves are never edited)."""
    return (task.interval_id, task.crontab_id, task.clocked_id, task.solar_id)


def _shared_row(model: Any, **values: Any) -> Any:
    """The first row with `values`, or a new one. Not get_or_create: beat's schedule tables
    have no unique constraint, so duplicates exist (stock beat, other tools, races) and
    get_or_create raises MultipleObjectsReturned on them."""
    found = model.objects.filter(**values).order_by("pk").first()
    return found if found is not None else model.objects.create(**values)


_EDITED_FIELDS: Final = (
    "name", "task", "kwargs", "args", "description", "start_time", "expires", "queue",
    "priority", "interval", "crontab", "clocked", "solar", "one_off", "date_changed",
)  # fmt: skip


def snapshot(task: PeriodicTask) -> dict[str, Any]:
    """What the audit trail records of a schedule: JSON, parameters masked."""
    timing = timing_of(task)
    params = _loads(task.kwargs, {})
    return {
        "name": task.name,
        "job": task.task,
        "params": masked_params(task.task, params) if isinstance(params, dict) else params,
        "args": _loads(task.args, []),
        "schedule": _schedule_words(timing),
        "start_time": _iso(task.start_time),
        "expires": _iso(task.expires),
        "one_off": task.one_off,
        "queue": task.queue or "",
        "priority": task.priority,
        "enabled": task.enabled,
        "description": task.description,
    }


@dataclass(frozen=True)
class Upcoming:
    """The next fire times of a schedule (in its zone), or why there are none."""

    times: list[FireTime]
    note: str = ""  # a daylight-saving change among them, or why nothing is coming


def upcoming(task: PeriodicTask, *, count: int = 5, now: datetime | None = None) -> Upcoming:
    """When beat will fire a stored schedule next."""
    return forecast(
        definition_of(task),
        last_run_at=task.last_run_at,
        ran=task.total_run_count > 0,
        changed_at=task.date_changed,
        count=count,
        now=now,
    )


def forecast(
    definition: ScheduleDefinition,
    *,
    last_run_at: datetime | None = None,
    ran: bool = False,
    changed_at: datetime | None = None,
    count: int = 5,
    now: datetime | None = None,
) -> Upcoming:
    """The next fire times by beat's own rules (start time, expiry, run once); for a schedule
    being edited, leave the history out: it counts from now, as beat does for a fresh row."""
    now = now or datetime.now(UTC)
    if not definition.enabled:
        return Upcoming([], "Paused.")
    one_off = definition.one_off or definition.timing.kind is Kind.ONE_OFF
    if one_off and ran:
        return Upcoming([], "Ran once; it will not fire again.")
    timing = definition.timing
    zone = _zone_or_default(timing.timezone)
    start = definition.start_time
    earliest = max(now, start) if start else now
    times: list[FireTime]
    if timing.kind is Kind.CRONTAB:
        # A start time counts from the second before it: a fire exactly at the start is due.
        after = earliest - timedelta(seconds=1) if earliest > now else now
        times = next_fire_times(timing.expression(), timing.timezone, count=count, after=after)
    elif timing.kind is Kind.INTERVAL:
        if last_run_at is not None:
            first = last_run_at + timing.step()
        elif start is not None and (start > now or changed_at is not None):
            # Beat fires a stored row with a start time and no last run at that time. (One
            # being saved with a past start counts from now: see `fresh_last_run`.)
            first = start
        else:
            first = (changed_at or now) + timing.step()
        times = _interval_times(first, timing.step(), earliest, zone, count)
    elif timing.kind is Kind.ONE_OFF and timing.run_at is not None:
        times = [FireTime(max(timing.run_at, earliest).astimezone(zone), utc_offset_changed=False)]
    else:
        return Upcoming([], "")
    if one_off:
        times = times[:1]
    if definition.expires is not None:
        expires = definition.expires
        times = [t for t in times if t.at < expires]
        if not times:
            return Upcoming([], "Expired." if expires <= now else "Expires before it fires.")
    return Upcoming(times, dst_note(times))


def _interval_times(
    first: datetime, step: timedelta, earliest: datetime, zone: Any, count: int
) -> list[FireTime]:
    if first < earliest:
        first += step * ((earliest - first) // step)
        if first < earliest:
            first = earliest  # overdue: beat sends it at its next tick
    times: list[FireTime] = []
    for n in range(count):
        at = (first + step * n).astimezone(zone)
        changed = bool(times) and at.utcoffset() != times[-1].at.utcoffset()
        times.append(FireTime(at, utc_offset_changed=changed))
    return times


def _schedule_words(timing: Timing) -> str:
    if timing.kind is Kind.CRONTAB:
        return f"cron {timing.cron} ({timing.timezone})"
    return timing.in_words()


def _zone_or_default(name: str) -> Any:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.get_current_timezone()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _loads(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default
