"""Actions on schedules: save (create or edit), pause/resume one or many, delete, run now, and
reset a declared schedule to its code. Each is audited with the values before and after. The
Django admin, which edits beat's PeriodicTask column by column, saves with the same rules
through `periodic_task_check` and `periodic_task_save`.

Beat (django-celery-beat's DatabaseScheduler) re-reads the schedules when the
`PeriodicTasks` change marker moves: `PeriodicTask.save()` moves it, a queryset `update()` does
not, so the bulk toggle moves it itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from ..jobs.params import ParamsError
from ..jobs.policies import QUEUES
from ..jobs.registry import find_job
from ..jobs.task import Launch
from ..models import DeclaredSchedule, Run, RunSource
from ..schedules.cron import CronError
from ..schedules.declared import declarations, fingerprint
from ..schedules.definition import (
    PERIODS,
    Kind,
    ScheduleDefinition,
    definition_of,
    fresh_last_run,
    schedule_row_ids,
    snapshot,
    write,
)
from .common import Actor, ServiceError, audit, require_task_permission
from .runs import LaunchOptions, job_launch

MANAGE = "tasks_app.manage_schedules"
NAME_MAX = 200  # PeriodicTask.name
MAX_INTERVAL_SECONDS = 366 * 86400
# The times a schedule may name. Python's datetimes end at the years 1 and 9999: a time near
# either end overflows when it is converted to UTC (to store it) or stepped to its next fire.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
OUT_OF_RANGE = "Give a time between the years 1900 and 2999."


class InvalidSchedule(ServiceError):
    """Field name -> message, for the editor's inline errors and the API's 400."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


def schedule_save(
    definition: ScheduleDefinition, *, actor: Actor, task: PeriodicTask | None = None
) -> PeriodicTask:
    """Create a schedule, or change `task` to `definition`. Raises PermissionDenied,
    InvalidSchedule or ParamsError; nothing is stored then."""
    actor.require(MANAGE)
    if task is not None:
        require_job_permission(actor, task.task)  # what it launches now, as well as after
    params = _checked(definition, actor, task)
    with transaction.atomic():
        if task is not None:
            task = PeriodicTask.objects.select_for_update().get(pk=task.pk)
        before = snapshot(task) if task is not None else None
        saved = write(replace(definition, params=params), task)
        after = snapshot(saved)
        action = "schedule.create" if before is None else "schedule.edit"
        audit(actor, action, None, _changes(before, after), target=_target(saved))
    return saved


def schedules_toggle(
    ids: Sequence[int], *, actor: Actor, enabled: bool | None = None
) -> list[PeriodicTask]:
    """Enable (True), pause (False) or flip (None) the given schedules; answer those changed."""
    actor.require(MANAGE)
    changed: list[PeriodicTask] = []
    overdue: list[str] = []
    with transaction.atomic():
        # Lock the schedules' own rows only: PostgreSQL cannot lock the nullable side of the
        # outer join that select_related("clocked") makes.
        rows = PeriodicTask.objects.select_for_update(of=("self",)).select_related("clocked")
        for task in rows.filter(pk__in=list(ids)).order_by("name"):
            wanted = (not task.enabled) if enabled is None else enabled
            if wanted == task.enabled:
                continue
            require_job_permission(actor, task.task)
            now = timezone.now()
            if wanted and task.clocked is not None and task.clocked.clocked_time <= now:
                overdue.append(task.name)  # beat would fire it the moment it is resumed
                continue
            # Like PeriodicTask.save(): a paused schedule forgets its last run. Resumed, it
            # counts from now: beat counts a row without a last run from its date_changed,
            # which update() does not move (and from 30 years back if it has a start time).
            last_run = fresh_last_run(definition_of(task), now=now) if wanted else None
            PeriodicTask.objects.filter(pk=task.pk).update(
                enabled=wanted, last_run_at=last_run, date_changed=now
            )
            details = {
                "name": task.name,
                "before": {"enabled": task.enabled},
                "after": {"enabled": wanted},
            }
            action = "schedule.resume" if wanted else "schedule.pause"
            audit(actor, action, None, details, target=_target(task))
            task.enabled = wanted
            changed.append(task)
        if overdue:
            # Raised inside the transaction, so nothing is stored: all or nothing, as for a
            # missing permission.
            names = ", ".join(repr(name) for name in overdue)
            raise ServiceError(
                f"Nothing was changed: the time of one-off schedule(s) {names} has passed, so "
                "beat would fire them at once. Edit them to set a new time."
            )
        if changed:
            # update() sends no signal: tell beat ourselves.
            PeriodicTasks.update_changed()  # type: ignore[no-untyped-call]
    return changed


def schedule_delete(task: PeriodicTask, *, actor: Actor) -> None:
    actor.require(MANAGE)
    require_job_permission(actor, task.task)
    if DeclaredSchedule.objects.filter(periodic_task=task).exists():
        raise ServiceError(
            f"{task.name!r} is declared in code, so it would come back at the next restart. "
            "Pause it here, or remove it from the code."
        )
    with transaction.atomic():
        before = snapshot(task)
        target = _target(task)
        task.delete()  # type: ignore[no-untyped-call]  # signals beat
        audit(actor, "schedule.delete", None, _changes(before, None), target=target)


def schedule_run_now(task: PeriodicTask, *, actor: Actor) -> Run:
    """Launch the schedule's job now with its parameters and options, recorded as a run of
    this schedule (source "schedule") launched by `actor`. A plain task's schedule:
    superusers only, as every action on one."""
    require_job_permission(actor, task.task)
    spec = find_job(task.task)
    definition = definition_of(task)
    options = LaunchOptions(queue=definition.queue or None, priority=_launch_priority(task))
    if spec is not None:
        run = job_launch(
            task.task, definition.params, actor=actor, options=options,
            source=RunSource.SCHEDULE, schedule_name=task.name,
        )  # fmt: skip
    else:
        run = _run_plain_task(task, definition, actor, options)
    audit(actor, "schedule.run_now", run, {"name": task.name, "run": run.task_id})
    return run


def schedule_reset(task: PeriodicTask, *, actor: Actor) -> PeriodicTask:
    """Put a declared schedule back to what its code declares (keeping it paused or not)."""
    actor.require(MANAGE)
    require_job_permission(actor, task.task)
    declaration = declarations(current_app).get(task.name)
    marker = DeclaredSchedule.objects.filter(periodic_task=task).first()
    if declaration is None or marker is None:
        raise ServiceError(f"{task.name!r} is not declared in code.")
    with transaction.atomic():
        before = snapshot(task)
        definition = replace(declaration.definition, enabled=task.enabled)
        saved = write(definition, task)
        marker.applied_hash = fingerprint(definition_of(saved))
        marker.save(update_fields=["applied_hash", "synced_at"])
        audit(
            actor, "schedule.reset", None, _changes(before, snapshot(saved)), target=_target(saved)
        )
    return saved


def periodic_task_check(task: PeriodicTask, *, actor: Actor) -> dict[str, Any]:
    """The rules of `schedule_save` for a PeriodicTask edited column by column (the Django
    admin, where the schedule is one of beat's own rows, solar ones included), before
    `periodic_task_save`. Answers the kwargs to store (a job's normalised by its schema).
    Raises PermissionDenied, InvalidSchedule (keyed by PeriodicTask field) or ParamsError."""
    actor.require(MANAGE)
    original = PeriodicTask.objects.filter(pk=task.pk).first() if task.pk else None
    if original is not None:
        require_job_permission(actor, original.task)
    return _checked_row(task, actor, original)


def periodic_task_save(task: PeriodicTask, *, actor: Actor) -> PeriodicTask:
    """Create or change `task` as edited (not yet saved), with `periodic_task_check`'s rules,
    audited like `schedule_save` with the values before (as stored) and after."""
    actor.require(MANAGE)
    with transaction.atomic():
        original = None
        if task.pk is not None:
            original = PeriodicTask.objects.select_for_update().filter(pk=task.pk).first()
        if original is not None:
            require_job_permission(actor, original.task)
        kwargs = _checked_row(task, actor, original)
        before = snapshot(original) if original is not None else None
        if find_job(task.task) is not None:
            task.kwargs, task.args = json.dumps(kwargs), "[]"
        fields = [
            f.name for f in PeriodicTask._meta.concrete_fields
            if not f.primary_key and f.name not in _BEAT_OWNED
        ]  # fmt: skip
        # As `write` does: paused or re-enabled counts from now; a new start counts from itself.
        if original is None or task.enabled != original.enabled:
            task.last_run_at = fresh_last_run(definition_of(task))
            task.total_run_count = 0
            fields += sorted(_BEAT_OWNED)
        elif schedule_row_ids(task) != schedule_row_ids(original) or (
            task.start_time is not None and task.start_time > timezone.now()
        ):
            # New timing: count from now, not from a last run under the old one (or a new
            # start time: count from it).
            task.last_run_at = fresh_last_run(definition_of(task))
            fields.append("last_run_at")
        if original is None:
            task.save()  # type: ignore[no-untyped-call]  # signals beat
        else:
            # Beat writes last_run_at and the run count meanwhile: leave them be.
            task.save(update_fields=fields)  # type: ignore[no-untyped-call]
        action = "schedule.create" if before is None else "schedule.edit"
        audit(actor, action, None, _changes(before, snapshot(task)), target=_target(task))
    return task


# --- checks ----------------------------------------------------------------------------------


def _checked(
    definition: ScheduleDefinition, actor: Actor, task: PeriodicTask | None
) -> dict[str, Any]:
    """The JSON params to store; InvalidSchedule names each bad field, ParamsError each bad
    parameter."""
    errors: dict[str, str] = {}
    name = definition.name.strip()
    if not name:
        errors["name"] = "Give the schedule a name."
    elif len(name) > NAME_MAX:
        errors["name"] = f"At most {NAME_MAX} characters."
    elif PeriodicTask.objects.filter(name=name).exclude(pk=task.pk if task else 0).exists():
        errors["name"] = "Another schedule has this name."
    elif task is not None and name != task.name and _declared(task):
        errors["name"] = "A schedule declared in code keeps its name (the code finds it by it)."
    errors.update(_timing_errors(definition, task))
    if definition.queue and definition.queue not in QUEUES:
        errors["queue"] = f"Unknown queue; use one of: {', '.join(QUEUES)}."
    if definition.priority is not None and not 0 <= definition.priority <= 9:
        errors["priority"] = "Priority must be between 0 and 9."
    spec = find_job(definition.job)
    params: dict[str, Any] = dict(definition.params)
    if spec is None:
        if problem := _plain_task_problem(definition.job, actor):
            errors["job"] = problem
    else:
        require_job_permission(actor, spec.name)
        if definition.args:
            errors["job"] = "Jobs take keyword parameters only."
    if errors:
        raise InvalidSchedule(errors)
    if spec is not None:
        params = spec.params.validate(params)  # ParamsError names each parameter
    return params


# Columns beat itself writes as it fires a schedule.
_BEAT_OWNED = frozenset({"last_run_at", "total_run_count"})
# `_timing_errors`' names -> PeriodicTask's columns.
_ROW_FIELDS = {
    "cron": "crontab", "timezone": "crontab", "every": "interval", "period": "interval",
    "run_at": "clocked", "kind": "interval",
}  # fmt: skip


def _checked_row(task: PeriodicTask, actor: Actor, original: PeriodicTask | None) -> dict[str, Any]:
    errors: dict[str, str] = {}
    if original is not None and task.name != original.name and _declared(original):
        errors["name"] = "A schedule declared in code keeps its name (the code finds it by it)."
    timing_errors = _timing_errors(definition_of(task), original)
    if task.solar is not None:
        timing_errors.pop("kind", None)  # beat's own solar rows: beat's rules only
    for field, problem in timing_errors.items():
        errors.setdefault(_ROW_FIELDS.get(field, field), problem)
    if task.queue and task.queue not in QUEUES:
        errors["queue"] = f"Unknown queue; use one of: {', '.join(QUEUES)}."
    if task.priority is not None and not 0 <= task.priority <= 9:
        errors["priority"] = "Priority must be between 0 and 9."
    args, kwargs = _json_or_none(task.args or "[]"), _json_or_none(task.kwargs or "{}")
    if not isinstance(kwargs, dict):
        errors["kwargs"] = "Give a JSON object of keyword arguments."
    spec = find_job(task.task)
    if spec is None:
        if problem := _plain_task_problem(task.task, actor):
            errors["task"] = problem
        if not isinstance(args, list):
            errors["args"] = "Give a JSON list of positional arguments."
    else:
        require_job_permission(actor, spec.name)
        if args != []:
            errors["args"] = "Jobs take keyword parameters only."
    if errors:
        raise InvalidSchedule(errors)
    assert isinstance(kwargs, dict)
    return spec.params.validate(kwargs) if spec is not None else kwargs


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _timing_errors(definition: ScheduleDefinition, task: PeriodicTask | None) -> dict[str, str]:
    timing = definition.timing
    times = (
        ("run_at", timing.run_at),
        ("start_time", definition.start_time),
        ("expires", definition.expires),
    )
    naive = {
        name: "Give the time with its time zone."
        for name, value in times
        if value is not None and value.utcoffset() is None
    }
    if naive:  # comparing them with aware times below would fail
        return naive
    far = {
        name: OUT_OF_RANGE
        for name, value in times
        if value is not None and not EARLIEST <= value < LATEST
    }
    if far:  # storing them, or the fire times after them, would overflow
        return far
    errors: dict[str, str] = {}
    now = datetime.now(UTC)
    if timing.kind is Kind.CRONTAB:
        try:
            timing.expression()
        except CronError as error:
            errors["timezone" if error.field == "timezone" else "cron"] = str(error)
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(timing.timezone)
        except (ValueError, KeyError, OSError):
            errors["timezone"] = f"Unknown time zone {timing.timezone!r}."
    elif timing.kind is Kind.INTERVAL:
        if timing.period not in PERIODS:
            errors["period"] = f"Use one of: {', '.join(PERIODS)}."
        elif (
            not 1 <= timing.every <= MAX_INTERVAL_SECONDS  # first: a huge step overflows
            or timing.step().total_seconds() > MAX_INTERVAL_SECONDS
        ):
            errors["every"] = "Give a whole number of at least 1, for at most a year."
    elif timing.kind is Kind.ONE_OFF:
        clocked = task.clocked if task is not None else None
        unchanged = clocked is not None and clocked.clocked_time == timing.run_at
        # Beat fires a clocked schedule whose time has passed at once, whatever its last run:
        # so a past time may stay only as it is, and not on a schedule being resumed.
        resumed = task is not None and definition.enabled and not task.enabled
        if timing.run_at is None:
            errors["run_at"] = "Give the date and time to run at."
        elif timing.run_at <= now and (not unchanged or resumed):
            errors["run_at"] = "Must be in the future."
    else:
        errors["kind"] = "Choose a crontab, an interval or a one-off schedule."
    start, expires = definition.start_time, definition.expires
    if start is not None and expires is not None and expires <= start:
        errors["expires"] = "Must be after the start time."
    elif expires is not None and expires <= now and definition.enabled:
        errors["expires"] = "Already past: the schedule would never fire."
    return errors


def require_job_permission(actor: Actor, job: str) -> None:
    """What every action on a schedule needs besides its own permission (`MANAGE`, or launch
    for run now): the permission of the job it launches, if that job asks for one; for a task
    that is not a registered job, superuser (PermissionDenied otherwise)."""
    require_task_permission(actor, job)


def _plain_task_problem(name: str, actor: Actor) -> str:
    """Why a schedule may not launch `name`, a task that is not a registered job, or "".
    Only superusers schedule plain tasks, and only tasks Celery knows here: beat would send
    any other name, and no worker would run it."""
    if not _superuser(actor):
        return "Choose a registered job."
    if not name.strip():
        return "Give the task's name."
    if not celery_task_known(name):
        return f"No Celery task named {name!r} is registered in this app."
    return ""


_discovered = False


def celery_task_known(name: str) -> bool:
    """Whether the Celery app's registry has `name`, once its tasks are autodiscovered (in a
    web process that happens only when something imports the default modules)."""
    global _discovered
    if name in current_app.tasks:
        return True
    if not _discovered:
        current_app.loader.import_default_modules()
        _discovered = True
    return name in current_app.tasks


def _declared(task: PeriodicTask) -> bool:
    return DeclaredSchedule.objects.filter(periodic_task=task).exists()


def _superuser(actor: Actor) -> bool:
    return actor.is_superuser


def _launch_priority(task: PeriodicTask) -> int | None:
    priority = task.priority
    return priority if priority is not None and 0 <= priority <= 9 else None


def _run_plain_task(
    task: PeriodicTask, definition: ScheduleDefinition, actor: Actor, options: LaunchOptions
) -> Run:
    """A schedule of a plain Celery task (superusers make those in the admin)."""
    actor.require("tasks_app.launch_job")
    celery_task = current_app.tasks.get(task.task)
    if celery_task is None:
        raise ServiceError(f"No task named {task.task} is registered in this process.")
    launch = Launch(RunSource.SCHEDULE, actor.user_id, actor.label, schedule_name=task.name)
    result = celery_task.apply_async(
        tuple(definition.args), dict(definition.params), taskdeck_launch=launch,  # type: ignore[call-arg]
        **options.validate(),
    )  # fmt: skip
    return Run.objects.get(task_id=result.id)


def _target(task: PeriodicTask) -> tuple[str, str]:
    return ("schedule", str(task.pk))


def _changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """The audit details: every value on create and delete, the changed ones on edit."""
    if before is None or after is None:
        name = (after or before or {}).get("name", "")
        return {"name": name, "before": before, "after": after}
    keys = [key for key in after if before.get(key) != after[key]]
    return {
        "name": after["name"],
        "before": {key: before.get(key) for key in keys},
        "after": {key: after[key] for key in keys},
    }


__all__ = [
    "InvalidSchedule",
    "ParamsError",
    "periodic_task_check",
    "periodic_task_save",
    "require_job_permission",
    "schedule_delete",
    "schedule_reset",
    "schedule_run_now",
    "schedule_save",
    "schedules_toggle",
]
