"""Schedules declared in code: Taskdeck's built-ins and Celery's ``beat_schedule`` (the
``CELERY_BEAT_SCHEDULE`` setting, ``app.conf.beat_schedule``, ``app.add_periodic_task``).

They are stored as ordinary django-celery-beat rows, marked by a `DeclaredSchedule`, and synced
when the database is migrated and when beat starts, by this rule:

* a declared schedule that does not exist yet is created (enabled);
* one nobody edited since the last sync takes the code's current version (a deploy that changes
  a declaration applies it), keeping its enabled/paused state;
* one an operator edited in the dashboard or admin is **kept as the operator left it**; the
  dashboard marks it "edited" and shows what the code declares, with a button to go back to it.
  Pausing is not an edit: a declared schedule stays paused across restarts.
* deleting a declared schedule is refused (it would come back at the next sync): pause it, or
  remove it from the code.

Stock django-celery-beat instead overwrites every ``beat_schedule`` row at each beat start,
silently undoing operators' edits; `TaskdeckScheduler` calls this instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from celery import Celery
from celery.schedules import crontab, maybe_schedule, schedule
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils.crypto import salted_hmac
from django_celery_beat.models import PeriodicTask, PeriodicTasks

from ..jobs.params import ParamsError
from ..jobs.registry import find_job, masked_params
from ..jobs.sealing import SealError, unseal
from ..models import DeclarationOrigin, DeclaredSchedule
from .rows import definition_of, write
from .values import Kind, ScheduleDefinition, Timing

logger = logging.getLogger(__name__)

REAPER = "Taskdeck: reap lost runs"
CLEANUP = "Taskdeck: clean up old runs"
EVALUATE_ALERTS = "Taskdeck: evaluate alert rules"
DELIVER_ALERTS = "Taskdeck: deliver alert messages"
ROLL_UP_STATS = "Taskdeck: roll up run statistics"

BUILTIN: dict[str, ScheduleDefinition] = {
    REAPER: ScheduleDefinition(
        name=REAPER,
        job="taskdeck.reap_lost_runs",
        timing=Timing(Kind.INTERVAL, every=30, period="seconds"),
        description="Marks runs whose worker stopped sending heartbeats as lost.",
    ),
    CLEANUP: ScheduleDefinition(
        name=CLEANUP,
        job="taskdeck.cleanup",
        timing=Timing(Kind.CRONTAB, cron="30 3 * * *", timezone="UTC"),
        params={"days": 30, "failed_days": 90, "batch_size": 1000},
        description="Deletes finished runs after 30 days, failed and lost ones after 90.",
    ),
    EVALUATE_ALERTS: ScheduleDefinition(
        name=EVALUATE_ALERTS,
        job="taskdeck.evaluate_alerts",
        timing=Timing(Kind.INTERVAL, every=15, period="seconds"),
        description="Checks alert deadlines, missed schedules and failing streaks.",
    ),
    DELIVER_ALERTS: ScheduleDefinition(
        name=DELIVER_ALERTS,
        job="taskdeck.deliver_alerts",
        timing=Timing(Kind.INTERVAL, every=15, period="seconds"),
        description="Retries alert messages that could not be delivered yet.",
    ),
    ROLL_UP_STATS: ScheduleDefinition(
        name=ROLL_UP_STATS,
        job="taskdeck.roll_up_stats",
        timing=Timing(Kind.INTERVAL, every=30, period="seconds"),
        description="Counts finished runs into the statistics behind /metrics and job pages.",
    ),
}


@dataclass(frozen=True)
class Declaration:
    origin: DeclarationOrigin
    definition: ScheduleDefinition


def declarations(app: Celery) -> dict[str, Declaration]:
    """Every declared schedule by name; a beat_schedule entry we cannot store is logged."""
    found = {name: Declaration(DeclarationOrigin.BUILTIN, d) for name, d in BUILTIN.items()}
    for name, entry in (app.conf.beat_schedule or {}).items():
        try:
            definition = from_beat_entry(str(name), entry, app)
        except (KeyError, TypeError, ValueError) as error:
            logger.error("beat_schedule entry %r is not used: %s", name, error)
            continue
        found[str(name)] = Declaration(DeclarationOrigin.CODE, definition)
    return found


def from_beat_entry(name: str, entry: Mapping[str, Any], app: Celery) -> ScheduleDefinition:
    """A Celery ``beat_schedule`` entry as a definition (crontab or interval schedules)."""
    when = maybe_schedule(entry["schedule"], entry.get("relative", False), app=app)
    if isinstance(when, crontab):
        # The fields as written; Celery keeps them for its repr and pickling.
        fields = tuple(
            getattr(when, f"_orig_{part}")
            for part in ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
        )
        zone = getattr(when, "tz", None) or app.timezone
        timing = Timing(Kind.CRONTAB, cron=" ".join(map(str, fields)), timezone=str(zone))
        timing.expression()  # refuse what beat would misread
    elif isinstance(when, schedule):
        timing = _interval(getattr(when, "run_every"))  # noqa: B009 - missing from the stubs
    else:
        raise ValueError(f"only crontab and interval schedules can be declared, not {when!r}")
    options = entry.get("options") or {}
    params = dict(entry.get("kwargs") or {})
    spec = find_job(entry["task"])
    if spec is not None:
        try:
            params = spec.params.validate(params)
        except ParamsError as error:
            # Stored anyway: each fire is then recorded as a failed run that says why.
            logger.error("beat_schedule entry %r has invalid parameters: %s", name, error)
    return ScheduleDefinition(
        name=name,
        job=entry["task"],
        timing=timing,
        params=params,
        args=list(entry.get("args") or ()),
        queue=str(options.get("queue") or ""),
        priority=options.get("priority"),
    )


def _interval(every: timedelta) -> Timing:
    seconds = int(every.total_seconds())
    if seconds <= 0 or seconds != every.total_seconds():
        raise ValueError(f"interval must be a whole number of seconds above 0, not {every}")
    for period, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0:
            return Timing(Kind.INTERVAL, every=seconds // size, period=period)
    return Timing(Kind.INTERVAL, every=seconds, period="seconds")


def fingerprint(definition: ScheduleDefinition, secret: str | None = None) -> str:
    """What a sync compares. Leaves out `enabled` (pausing is not an edit) and, but for
    crontabs, the zone (only used for display). Keyed with `secret` (default SECRET_KEY)."""
    timing = definition.timing
    data = {
        "name": definition.name,
        "job": definition.job,
        "params": _opened(definition.params),
        "args": definition.args,
        "kind": timing.kind.value,
        "cron": " ".join(timing.cron.split()),
        "timezone": timing.timezone if timing.kind is Kind.CRONTAB else "",
        "every": timing.every,
        "period": timing.period if timing.kind is Kind.INTERVAL else "",
        "run_at": timing.run_at.isoformat() if timing.run_at else None,
        "description": definition.description,
        "start_time": definition.start_time.isoformat() if definition.start_time else None,
        "expires": definition.expires.isoformat() if definition.expires else None,
        "one_off": definition.one_off,
        "queue": definition.queue,
        "priority": definition.priority,
    }
    text = json.dumps(data, sort_keys=True, default=str)
    # Keyed: the hash covers sensitive values, which must not be guessable from it.
    return salted_hmac("taskdeck.declared-schedule", text, secret=secret).hexdigest()


def matches(definition: ScheduleDefinition, stored_hash: str) -> bool:
    """Whether `stored_hash` is this definition's fingerprint under SECRET_KEY or one of
    SECRET_KEY_FALLBACKS: rotating the key must not make every declared schedule look edited
    (and stop following the code). The next sync stores the hash under the current key."""
    secrets = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return any(fingerprint(definition, secret) == stored_hash for secret in secrets)


def _opened(params: dict[str, Any]) -> dict[str, Any]:
    """Sealed values opened, so two seals of one value compare equal."""
    try:
        return {k: unseal(v) for k, v in params.items()}
    except SealError:
        return params


def shown(definition: ScheduleDefinition) -> dict[str, Any]:
    """The declaration as the dashboard shows it: sensitive parameters masked."""
    params = masked_params(definition.job, definition.params)
    return {
        "job": definition.job,
        "params": params,
        "schedule": definition.timing.in_words(),
        "queue": definition.queue,
        "description": definition.description,
    }


def is_edited(task: PeriodicTask, marker: DeclaredSchedule) -> bool:
    """Changed by an operator since the code's version was last applied."""
    return not matches(definition_of(task), marker.applied_hash)


def sync_declared_schedules(app: Celery) -> dict[str, str]:
    """Apply the rule in the module docstring; answer what happened to each name."""
    outcome: dict[str, str] = {}
    if PeriodicTasks.last_change() is None:  # type: ignore[no-untyped-call]
        # Beat compares each change time with the last one it saw, and reads "no row" as
        # "nothing to compare": without a first row, the first edit ever made goes unnoticed
        # (until beat's five-minute full re-read). Migrations write rows without signals.
        PeriodicTasks.update_changed()  # type: ignore[no-untyped-call]
    for name, declaration in declarations(app).items():
        try:
            with transaction.atomic():
                outcome[name] = _sync_one(declaration)
        except IntegrityError:  # another process (a second beat, a migrate) got there first
            outcome[name] = "raced"
    return outcome


def _sync_one(declaration: Declaration) -> str:
    definition = declaration.definition
    wanted = fingerprint(definition)
    task = PeriodicTask.objects.select_for_update().filter(name=definition.name).first()
    if task is None:
        task = write(definition)
        _mark(task, declaration, wanted, applied=fingerprint(definition_of(task)))
        return "created"
    marker = DeclaredSchedule.objects.filter(periodic_task=task).first()
    current = fingerprint(definition_of(task))
    if marker is None:
        # Made by a migration, by stock beat, or by hand before it was declared: adopt it, as
        # edited unless it already matches the code.
        _mark(task, declaration, wanted, applied=current if current == wanted else "")
        return "adopted" if current == wanted else "kept"
    if matches(definition_of(task), marker.applied_hash):
        changed = current != wanted
        if changed:
            task = write(replace(definition, enabled=task.enabled), task)
            current = fingerprint(definition_of(task))
            logger.info("Schedule %r updated from its declaration.", definition.name)
        _mark(task, declaration, wanted, applied=current, marker=marker)
        return "updated" if changed else "unchanged"
    if not matches(definition, marker.declared_hash):
        logger.warning(
            "Schedule %r was edited by an operator, so its new declaration was not applied; "
            "use 'Reset to declared' in the dashboard to take it.",
            definition.name,
        )
    _mark(task, declaration, wanted, applied=marker.applied_hash, marker=marker)
    return "kept"


def _mark(
    task: PeriodicTask,
    declaration: Declaration,
    wanted: str,
    *,
    applied: str,
    marker: DeclaredSchedule | None = None,
) -> None:
    marker = marker or DeclaredSchedule(periodic_task=task)
    marker.origin = declaration.origin
    marker.declared = shown(declaration.definition)
    marker.declared_hash = wanted
    marker.applied_hash = applied
    marker.save()
