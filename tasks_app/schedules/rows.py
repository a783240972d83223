"""The django-celery-beat rows a schedule becomes, and back.

Beat reads `PeriodicTask` plus one schedule row (crontab, interval or clocked). Schedule rows
can be shared by several tasks, so an edit never changes one in place: it points the task at
the row for the new values (found or created).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, Final

from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
)

from ..jobs.registry import masked_params
from .values import Kind, ScheduleDefinition, Timing

__all__ = [
    "definition_of",
    "fresh_last_run",
    "schedule_row_ids",
    "snapshot",
    "timing_of",
    "write",
]


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


def _schedule_words(timing: Timing) -> str:
    if timing.kind is Kind.CRONTAB:
        return f"cron {timing.cron} ({timing.timezone})"
    return timing.in_words()


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _loads(text: str | None, default: Any) -> Any:
    try:
        return json.loads(text) if text else default
    except ValueError:
        return default
