"""What a schedule may hold: its name, timing, options, and the job (or plain task) it launches
with its arguments. Two shapes are checked by the same rules: a `ScheduleDefinition` (the
editor and the API) and a PeriodicTask edited column by column (the Django admin). The actions
in `services.schedules` apply them before anything is stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from celery import current_app
from django_celery_beat.models import PeriodicTask

from ..jobs.registry import JobSpec, find_job
from ..models import DeclaredSchedule
from ..schedules.cron import CronError
from ..schedules.definition import PERIODS, Kind, ScheduleDefinition, definition_of
from ..schedules.missed import MissedRuns, problems
from .common import Actor
from .errors import InvalidSchedule
from .launch_rules import priority_error, queue_error
from .policy import require_task_permission

MANAGE = "tasks_app.manage_schedules"
NAME_MAX = 200  # PeriodicTask.name
MAX_INTERVAL_SECONDS = 366 * 86400
# The times a schedule may name. Python's datetimes end at the years 1 and 9999: a time near
# either end overflows when it is converted to UTC (to store it) or stepped to its next fire.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)
OUT_OF_RANGE = "Give a time between the years 1900 and 2999."
KEEPS_NAME = "A schedule declared in code keeps its name (the code finds it by it)."

# `_timing_errors`' names -> PeriodicTask's columns.
_ROW_FIELDS = {
    "cron": "crontab", "timezone": "crontab", "every": "interval", "period": "interval",
    "run_at": "clocked", "kind": "interval",
}  # fmt: skip


def checked_params(
    definition: ScheduleDefinition, actor: Actor, task: PeriodicTask | None
) -> dict[str, Any]:
    """The JSON params to store for `definition` (replacing `task`, if given); InvalidSchedule
    names each bad field, ParamsError each bad parameter, PermissionDenied a job not allowed."""
    errors: dict[str, str] = {}
    name = definition.name.strip()
    if not name:
        errors["name"] = "Give the schedule a name."
    elif len(name) > NAME_MAX:
        errors["name"] = f"At most {NAME_MAX} characters."
    elif PeriodicTask.objects.filter(name=name).exclude(pk=task.pk if task else 0).exists():
        errors["name"] = "Another schedule has this name."
    elif task is not None and name != task.name and _declared(task):
        errors["name"] = KEEPS_NAME
    errors.update(_timing_errors(definition, task))
    errors.update(_option_errors(definition.queue, definition.priority))
    if definition.missed is not None:
        errors.update(missed_errors(definition.missed))
    spec, launch_errors = _launch_errors(
        definition.job, definition.args, actor, task_field="job", args_field="job"
    )
    errors.update(launch_errors)
    if errors:
        raise InvalidSchedule(errors)
    params: dict[str, Any] = dict(definition.params)
    return spec.params.validate(params) if spec is not None else params


def checked_row_kwargs(
    task: PeriodicTask,
    actor: Actor,
    original: PeriodicTask | None,
    missed: MissedRuns | None = None,
) -> dict[str, Any]:
    """`checked_params` for a PeriodicTask edited column by column (`original` as stored, or
    None for a new one) and the missed-run policy beside it (None: unchanged): the kwargs to
    store, errors keyed by PeriodicTask field (and `missed_policy`, `missed_cap`)."""
    errors: dict[str, str] = missed_errors(missed) if missed is not None else {}
    if original is not None and task.name != original.name and _declared(original):
        errors["name"] = KEEPS_NAME
    timing_errors = _timing_errors(definition_of(task), original)
    if task.solar is not None:
        timing_errors.pop("kind", None)  # beat's own solar rows: beat's rules only
    for field, problem in timing_errors.items():
        errors.setdefault(_ROW_FIELDS.get(field, field), problem)
    errors.update(_option_errors(task.queue, task.priority))
    args, kwargs = _json_or_none(task.args or "[]"), _json_or_none(task.kwargs or "{}")
    if not isinstance(kwargs, dict):
        errors["kwargs"] = "Give a JSON object of keyword arguments."
    spec, launch_errors = _launch_errors(
        task.task, args, actor, task_field="task", args_field="args"
    )
    errors.update(launch_errors)
    if errors:
        raise InvalidSchedule(errors)
    assert isinstance(kwargs, dict)
    return spec.params.validate(kwargs) if spec is not None else kwargs


def missed_errors(missed: MissedRuns) -> dict[str, str]:
    """A missed-run policy's problems, by field: `missed_policy` one of skip, run_once and
    run_all; `missed_cap` from 1 to 1000."""
    return problems(missed)


def require_job_permission(actor: Actor, job: str) -> None:
    """What every action on a schedule needs besides its own permission (`MANAGE`, or launch
    for run now): the permission of the job it launches, if that job asks for one; for a task
    that is not a registered job, superuser (PermissionDenied otherwise)."""
    require_task_permission(actor, job)


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


def _option_errors(queue: str | None, priority: int | None) -> dict[str, str]:
    """A schedule's queue and priority, by the rules of a launch now. An empty queue (the
    editor's "" or the admin's NULL) is the job's own."""
    errors: dict[str, str] = {}
    if problem := queue_error(queue or None):
        errors["queue"] = problem
    if problem := priority_error(priority):
        errors["priority"] = problem
    return errors


def _launch_errors(
    name: str, args: object, actor: Actor, *, task_field: str, args_field: str
) -> tuple[JobSpec | None, dict[str, str]]:
    """The job `name` names (None for a plain task) and what is wrong with launching it with
    positional `args`. PermissionDenied if it is a job `actor` may not schedule."""
    spec = find_job(name)
    errors: dict[str, str] = {}
    if spec is None:
        if problem := _plain_task_problem(name, actor):
            errors[task_field] = problem
        if not isinstance(args, list):
            errors[args_field] = "Give a JSON list of positional arguments."
    else:
        require_job_permission(actor, spec.name)
        if args != []:
            errors[args_field] = "Jobs take keyword parameters only."
    return spec, errors


def _plain_task_problem(name: str, actor: Actor) -> str:
    """Why a schedule may not launch `name`, a task that is not a registered job, or "".
    Only superusers schedule plain tasks, and only tasks Celery knows here: beat would send
    any other name, and no worker would run it."""
    if not actor.is_superuser:
        return "Choose a registered job."
    if not name.strip():
        return "Give the task's name."
    if not celery_task_known(name):
        return f"No Celery task named {name!r} is registered in this app."
    return ""


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


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _declared(task: PeriodicTask) -> bool:
    return DeclaredSchedule.objects.filter(periodic_task=task).exists()


__all__ = [
    "EARLIEST",
    "LATEST",
    "MANAGE",
    "MAX_INTERVAL_SECONDS",
    "NAME_MAX",
    "OUT_OF_RANGE",
    "celery_task_known",
    "checked_params",
    "checked_row_kwargs",
    "missed_errors",
    "require_job_permission",
]
