"""Actions on schedules: save (create or edit), pause/resume one or many, delete, run now, and
reset a declared schedule to its code. Each is audited with the values before and after. The
Django admin, which edits beat's PeriodicTask column by column, saves with the same rules
through `periodic_task_check` and `periodic_task_save`. The rules themselves (what a schedule
may hold) are `schedule_rules`; its constants are re-exported here for the pages that use them.

Beat (django-celery-beat's DatabaseScheduler) re-reads the schedules when the
`PeriodicTasks` change marker moves: `PeriodicTask.save()` moves it, a queryset `update()` does
not, so the bulk toggle moves it itself.

Each schedule has a missed-run policy (`ScheduleOptions`; `schedules.missed`), saved with it when
the definition carries one (`ScheduleDefinition.missed`) and audited with its other values. It is
Taskdeck's own setting, not part of what code declares: changing it on a declared schedule does
not mark it edited, and "Reset to declared" keeps it (as it keeps the schedule paused or not).
Pausing keeps the schedule's last run, so that on resume beat sees the fire times missed while
paused and applies the policy (under "skip", resuming counts from now instead).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from celery import current_app
from django.db import transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from ..jobs.registry import find_job
from ..models import DeclaredSchedule, MissedRunPolicy, Run, RunSource, ScheduleOptions
from ..schedules.declared import declarations, fingerprint
from ..schedules.definition import (
    ScheduleDefinition,
    definition_of,
    fresh_last_run,
    schedule_row_ids,
    snapshot,
    write,
)
from ..schedules.missed import (
    DEFAULT,
    MissedRuns,
    missed_runs_for,
    missed_runs_of,
)
from ..worker.enqueue import Launch, enqueue
from .common import Actor, audit
from .errors import InvalidSchedule, ParamsError, ServiceError
from .launch_rules import priority_error
from .runs import LaunchOptions, job_launch
from .schedule_rules import (
    EARLIEST,
    LATEST,
    MANAGE,
    MAX_INTERVAL_SECONDS,
    OUT_OF_RANGE,
    checked_params,
    checked_row_kwargs,
    missed_errors,
    require_job_permission,
)


def schedule_save(
    definition: ScheduleDefinition, *, actor: Actor, task: PeriodicTask | None = None
) -> PeriodicTask:
    """Create a schedule, or change `task` to `definition` (and its missed-run policy, if the
    definition carries one). Raises PermissionDenied, InvalidSchedule or ParamsError; nothing
    is stored then."""
    actor.require(MANAGE)
    if task is not None:
        require_job_permission(actor, task.task)  # what it launches now, as well as after
    params = checked_params(definition, actor, task)
    missed = definition.missed
    with transaction.atomic():
        if task is not None:
            task = PeriodicTask.objects.select_for_update().get(pk=task.pk)
        before = _snapshot(task) if task is not None else None
        stored = _stored(task)
        saved = write(replace(definition, params=params), task)
        missed = _store_missed(saved, missed)
        _carry_last_run(saved, stored, missed)
        after = _snapshot(saved)
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
    policies = missed_runs_for(ids)
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
            # A paused schedule keeps its last run: resumed, beat sees the fire times missed
            # meanwhile and applies its missed-run policy. Under "skip" (or with no last run)
            # it counts from now: beat counts a row without a last run from its date_changed,
            # which update() does not move (and from 30 years back if it has a start time).
            missed = policies.get(task.pk, DEFAULT)
            last_run = task.last_run_at
            if wanted and not _catches_up(task, last_run, missed, now):
                last_run = fresh_last_run(definition_of(task), now=now)
            PeriodicTask.objects.filter(pk=task.pk).update(
                enabled=wanted, last_run_at=last_run, date_changed=now
            )
            details: dict[str, Any] = {
                "name": task.name,
                "before": {"enabled": task.enabled},
                "after": {"enabled": wanted},
            }
            if wanted:
                details["missed_runs"] = missed.in_words()
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
        before = _snapshot(task)
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
    # A priority a launch would refuse (a row stored some other way): the job's own instead.
    priority = task.priority if priority_error(task.priority) is None else None
    options = LaunchOptions(queue=definition.queue or None, priority=priority)
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
        before = _snapshot(task)
        definition = replace(declaration.definition, enabled=task.enabled)
        saved = write(definition, task)
        marker.applied_hash = fingerprint(definition_of(saved))
        marker.save(update_fields=["applied_hash", "synced_at"])
        audit(
            actor, "schedule.reset", None, _changes(before, _snapshot(saved)), target=_target(saved)
        )
    return saved


def periodic_task_check(
    task: PeriodicTask, *, actor: Actor, missed: MissedRuns | None = None
) -> dict[str, Any]:
    """The rules of `schedule_save` for a PeriodicTask edited column by column (the Django
    admin, where the schedule is one of beat's own rows, solar ones included), before
    `periodic_task_save`. Answers the kwargs to store (a job's normalised by its schema).
    Raises PermissionDenied, InvalidSchedule (keyed by PeriodicTask field, or `missed_policy`
    and `missed_cap`) or ParamsError."""
    actor.require(MANAGE)
    original = PeriodicTask.objects.filter(pk=task.pk).first() if task.pk else None
    if original is not None:
        require_job_permission(actor, original.task)
    return checked_row_kwargs(task, actor, original, missed)


# Columns beat itself writes as it fires a schedule.
_BEAT_OWNED = frozenset({"last_run_at", "total_run_count"})


def periodic_task_save(
    task: PeriodicTask, *, actor: Actor, missed: MissedRuns | None = None
) -> PeriodicTask:
    """Create or change `task` as edited (not yet saved), and its missed-run policy (None:
    unchanged), with `periodic_task_check`'s rules, audited like `schedule_save` with the
    values before (as stored) and after."""
    actor.require(MANAGE)
    with transaction.atomic():
        original = None
        if task.pk is not None:
            original = PeriodicTask.objects.select_for_update().filter(pk=task.pk).first()
        if original is not None:
            require_job_permission(actor, original.task)
        kwargs = checked_row_kwargs(task, actor, original, missed)
        before = _snapshot(original) if original is not None else None
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
        missed = _store_missed(task, missed)
        _carry_last_run(task, _stored(original), missed)
        action = "schedule.create" if before is None else "schedule.edit"
        audit(actor, action, None, _changes(before, _snapshot(task)), target=_target(task))
    return task


def _run_plain_task(
    task: PeriodicTask, definition: ScheduleDefinition, actor: Actor, options: LaunchOptions
) -> Run:
    """A schedule of a plain Celery task (superusers make those in the admin)."""
    actor.require("tasks_app.launch_job")
    celery_task = current_app.tasks.get(task.task)
    if celery_task is None:
        raise ServiceError(f"No task named {task.task} is registered in this process.")
    launch = Launch(RunSource.SCHEDULE, actor.user_id, actor.label, schedule_name=task.name)
    return enqueue(
        celery_task, dict(definition.params), launch=launch, options=options.validate(),
        args=list(definition.args),
    )  # fmt: skip


def _snapshot(task: PeriodicTask) -> dict[str, Any]:
    """`snapshot` with the missed-run policy."""
    missed = missed_runs_of(task)
    return {**snapshot(task), "missed_policy": missed.policy, "missed_cap": missed.cap}


def _store_missed(task: PeriodicTask, missed: MissedRuns | None) -> MissedRuns:
    """Store `missed` as `task`'s policy (None: keep the stored one); answer the policy now.
    The default is stored only over another value, so most schedules need no row."""
    if missed is None:
        return missed_runs_of(task)
    problems = missed_errors(missed)
    if problems:  # the callers checked it: a bug, not the user's input
        raise InvalidSchedule(problems)
    values = {"missed_policy": missed.policy, "missed_cap": missed.cap}
    if missed != DEFAULT or ScheduleOptions.objects.filter(periodic_task=task).exists():
        ScheduleOptions.objects.update_or_create(periodic_task=task, defaults=values)
    return missed


# What a save changes about pausing: enabled before, the last run then, the timing rows then.
_Stored = tuple[bool, datetime | None, tuple[int | None, ...]] | None


def _stored(task: PeriodicTask | None) -> _Stored:
    if task is None:
        return None
    return (task.enabled, task.last_run_at, schedule_row_ids(task))


def _carry_last_run(saved: PeriodicTask, stored: _Stored, missed: MissedRuns) -> None:
    """Pausing or resuming with an edit: `write` (like PeriodicTask.save) forgets the last run.
    Keep it while paused, and on resume under a catching-up policy, so that beat applies the
    policy to the fire times missed while paused; not across a change of timing (the old last
    run counts for the old timing only)."""
    if stored is None:
        return
    enabled, last_run, rows = stored
    if saved.enabled == enabled or last_run is None or schedule_row_ids(saved) != rows:
        return
    if saved.enabled and not _catches_up(saved, last_run, missed, timezone.now()):
        return
    PeriodicTask.objects.filter(pk=saved.pk).update(last_run_at=last_run)
    saved.last_run_at = last_run


def _catches_up(
    task: PeriodicTask, last_run: datetime | None, missed: MissedRuns, now: datetime
) -> bool:
    """Whether a schedule resumed now keeps its last run, for beat to catch up from it: not
    under "skip", nor without a last run, nor with a start time still to come."""
    if missed.policy == MissedRunPolicy.SKIP or last_run is None:
        return False
    return task.start_time is None or task.start_time <= now


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
    "EARLIEST",
    "LATEST",
    "MANAGE",
    "MAX_INTERVAL_SECONDS",
    "OUT_OF_RANGE",
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
