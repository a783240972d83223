"""Actions on runs: launch, retry, cancel, one at a time or in bulk."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from celery import current_app
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from .. import selectors
from ..jobs.registry import MASK, find_job, get_job, masked_params
from ..models import FINAL_STATES, Run, RunSource, RunState
from ..selectors.rerun_diff import params_diff
from ..worker import broker, lifecycle
from ..worker.enqueue import Launch, PartlyQueued, enqueue, enqueue_many
from .common import Actor, audit
from .errors import (
    BulkLimitExceeded,
    InvalidBatch,
    InvalidOptions,
    NotLaunchable,
    NotRetriable,
    ParamsError,
    ServiceError,
)
from .launch_rules import priority_error, queue_error
from .policy import may_act_on_task, require_launch, require_task_permission

logger = logging.getLogger(__name__)

RETRIABLE_STATES = frozenset({RunState.FAILURE, RunState.REVOKED, RunState.LOST})


@dataclass(frozen=True)
class LaunchOptions:
    queue: str | None = None
    countdown: float | None = None
    eta: datetime | None = None
    priority: int | None = None

    def validate(self) -> dict[str, Any]:
        """Celery options, or InvalidOptions naming each bad field."""
        errors: dict[str, str] = {}
        limit = timedelta(seconds=settings.TASKDECK_VISIBILITY_TIMEOUT) - timedelta(minutes=5)
        if problem := queue_error(self.queue):
            errors["queue"] = problem
        if self.countdown is not None and self.eta is not None:
            errors["eta"] = "Give a delay or a start time, not both."
        if self.countdown is not None and not 0 <= self.countdown <= limit.total_seconds():
            errors["countdown"] = f"The delay must be between 0 and {int(limit.total_seconds())} s."
        if self.eta is not None:
            if timezone.is_naive(self.eta):
                errors["eta"] = "The start time needs a time zone."
            elif self.eta > timezone.now() + limit:
                errors["eta"] = "Start times this far ahead belong in a one-off schedule."
        if problem := priority_error(self.priority):
            errors["priority"] = problem
        if errors:
            raise InvalidOptions(errors)
        options: dict[str, Any] = {}
        if self.queue:
            options["queue"] = self.queue
        if self.countdown:
            options["countdown"] = self.countdown
        if self.eta is not None:
            options["eta"] = self.eta
        if self.priority is not None:
            options["priority"] = self.priority
        return options


def job_launch(
    job_name: str,
    params: Mapping[str, Any],
    *,
    actor: Actor,
    options: LaunchOptions | None = None,
    source: RunSource = RunSource.FORM,
    schedule_name: str = "",
) -> Run:
    """Validate and queue a job. Raises UnknownJob, PermissionDenied, ParamsError,
    InvalidOptions, lifecycle.AlreadyActive or BrokerUnavailable; nothing is queued then."""
    spec = get_job(job_name)
    require_launch(actor, spec)
    if not spec.ledger:
        # Its runs are not recorded, so there would be no run to show or follow.
        raise NotLaunchable(f"{spec.title} is housekeeping that runs on its schedule only.")
    celery_options = (options or LaunchOptions()).validate()
    json_params = spec.params.validate(params)  # once: enqueue takes these as they are
    launch = Launch(source, actor.user_id, actor.label, schedule_name=schedule_name)
    run = enqueue(spec.task, json_params, launch=launch, options=celery_options)
    audit(
        actor,
        "run.launch",
        run,
        {
            "job": job_name,
            "params": masked_params(job_name, json_params),
            **_jsonable(celery_options),
        },
    )
    return run


def jobs_launch_many(
    job_name: str,
    items: Sequence[Mapping[str, Any]],
    *,
    actor: Actor,
    options: LaunchOptions | None = None,
    source: RunSource = RunSource.FORM,
) -> list[Run]:
    """Queue one run of `job_name` per item (its parameters), all with the same options, in
    their order: the permission checked once, every item validated before anything is written,
    one INSERT for the runs, then their messages; one audit entry for the batch.

    All or nothing up to the broker. Raises UnknownJob, PermissionDenied, NotLaunchable,
    InvalidOptions, InvalidBatch (every invalid item named: `items.3.params.steps`; also an
    empty or over-long batch, and a unique job's items with the same parameters),
    lifecycle.AlreadyActive or BrokerUnavailable: nothing is queued then. PartlyQueued if the
    broker failed part way: its `queued` runs stand (and are audited), the rest are removed."""
    spec = get_job(job_name)
    require_launch(actor, spec)
    if not spec.ledger:
        raise NotLaunchable(f"{spec.title} is housekeeping that runs on its schedule only.")
    limit = settings.TASKDECK_BULK_LIMIT
    if not 1 <= len(items) <= limit:
        raise InvalidBatch({"items": [f"Give between 1 and {limit} items; {len(items)} given."]})
    celery_options = (options or LaunchOptions()).validate()
    valid: list[Mapping[str, Any]] = []
    errors: dict[str, list[str]] = {}
    first_with_key: dict[str, int] = {}
    for index, params in enumerate(items):
        prefix = f"items.{index}.params"
        try:
            json_params = spec.params.validate(params)  # once: enqueue_many takes these as they are
        except ParamsError as error:
            for name, messages in error.errors.items():
                errors[prefix if name == "__all__" else f"{prefix}.{name}"] = messages
            continue
        key = spec.key_for(json_params)
        if key is not None and (earlier := first_with_key.setdefault(key, index)) != index:
            errors[prefix] = [
                f"The same as items.{earlier}: {spec.title} runs once at a time for the same "
                "parameters."
            ]
        valid.append(json_params)
    if errors:
        raise InvalidBatch(errors)
    launch = Launch(source, actor.user_id, actor.label)
    try:
        runs = enqueue_many(spec.task, valid, launch=launch, options=celery_options)
    except PartlyQueued as partly:
        _audit_batch(actor, job_name, partly.queued, celery_options, source, unsent=partly.unsent)
        raise
    _audit_batch(actor, job_name, runs, celery_options, source)
    return runs


def _audit_batch(
    actor: Actor,
    job_name: str,
    runs: Sequence[Run],
    celery_options: Mapping[str, Any],
    source: RunSource,
    *,
    unsent: int = 0,
) -> None:
    """One entry for the batch (each run keeps its own parameters)."""
    details: dict[str, Any] = {
        "job": job_name,
        "count": len(runs),
        "task_ids": [run.task_id for run in runs],
        "source": source.value,
        **_jsonable(celery_options),
    }
    if unsent:
        details["not_queued"] = unsent  # the broker failed part way
    audit(actor, "runs.launch_batch", None, details)


def run_retry(run: Run, *, actor: Actor) -> Run:
    """A new run with exactly the same parameters, linked to the original (and its root).
    A job's own permission is needed too; a run of a plain task (not a registered job),
    superuser."""
    actor.require("tasks_app.retry_run")
    require_task_permission(actor, run.job_name)
    if run.state not in RETRIABLE_STATES:
        state = run.get_state_display().lower()
        raise NotRetriable(
            f"Only failed, cancelled or lost runs can be retried; this one is {state}."
        )
    new = _retry(run, actor)
    audit(actor, "run.retry", new, {"retry_of": run.task_id, "job": run.job_name})
    return new


def _retry(run: Run, actor: Actor) -> Run:
    task = current_app.tasks.get(run.job_name)
    if task is None:
        raise NotRetriable(f"No task named {run.job_name} is registered any more.")
    options = {"queue": run.queue} if run.queue else {}
    launch = Launch(RunSource.RETRY, actor.user_id, actor.label, retry_of=run)
    return enqueue(task, dict(run.params), launch=launch, options=options, args=list(run.args))


def rerun_params(run: Run, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters of a re-run that changes only `overrides`: the original's, with those
    over them. A sensitive parameter not overridden, or given the mask answers show, keeps the
    original's sealed value (never sent to the caller, so never sent back)."""
    spec = find_job(run.job_name)
    sensitive = spec.sensitive if spec is not None else frozenset()
    merged = dict(run.params or {})
    for name, value in overrides.items():
        if name in sensitive and value == MASK and name in merged:
            continue
        merged[name] = value
    return merged


def run_rerun(run: Run, params: Mapping[str, Any], *, actor: Actor) -> Run:
    """Run a finished run's job again with `params` (its parameters, edited): a new run linked
    to the original (and its root) as a retry is, launched with the original's queue.

    Needs what a retry needs and what launching the job needs (its own permission too). Any
    finished run may be re-run, a successful one too: with changed parameters it is a new
    attempt, not a repeat. Raises PermissionDenied, NotRetriable, NotLaunchable, ParamsError,
    lifecycle.AlreadyActive or BrokerUnavailable; nothing is queued then."""
    actor.require("tasks_app.retry_run")
    spec = find_job(run.job_name)
    if spec is None:
        require_task_permission(actor, run.job_name)  # superusers hear why below, others 403
        raise NotRetriable(
            f"{run.job_name} is not a registered job: it has no parameters to change. "
            "Retry it as it was instead."
        )
    require_launch(actor, spec)
    if not spec.ledger:
        raise NotLaunchable(f"{spec.title} is housekeeping that runs on its schedule only.")
    if run.state not in FINAL_STATES:
        state = run.get_state_display().lower()
        raise NotRetriable(f"Only finished runs can be run again; this one is {state}.")
    json_params = spec.params.validate(params)  # once: enqueue takes these as they are
    options = {"queue": run.queue} if run.queue else {}
    launch = Launch(RunSource.RETRY, actor.user_id, actor.label, retry_of=run)
    new = enqueue(spec.task, json_params, launch=launch, options=options)
    diff = params_diff(run.job_name, run.params or {}, json_params)
    audit(
        actor,
        "run.retry",
        new,
        {
            "retry_of": run.task_id,
            "job": run.job_name,
            "params": masked_params(run.job_name, json_params),
            "changed": diff.changed_names,
        },
    )
    return new


UNKNOWN = "unknown"


@dataclass
class BulkOutcome:
    done: list[Run] = field(default_factory=list)
    skipped: list[tuple[Run, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # task ids given that match no run


def runs_retry_bulk(
    *,
    actor: Actor,
    ids: Sequence[int] | None = None,
    task_ids: Sequence[str] | None = None,
    filters: selectors.RunFilter | None = None,
    limit: int | None = None,
) -> BulkOutcome:
    """Retry the given runs (by primary key or task id), or every retriable run matching
    `filters`, at most `limit`. Task ids that match no run are reported in `unknown`: a caller
    must learn that nothing happened to them, not lose them silently."""
    actor.require("tasks_app.retry_run")
    outcome = BulkOutcome()
    if task_ids is not None:
        _check_limit(len(task_ids), limit)  # as asked: the API documents a cap on the list
        wanted = list(dict.fromkeys(task_ids))
        found = dict(Run.objects.filter(task_id__in=wanted).values_list("task_id", "pk"))
        outcome.unknown = [t for t in wanted if t not in found]
        ids = list(found.values())
    runs = _bulk_targets(ids, filters, limit, retriable_only=ids is None)
    for run in runs:
        if run.state not in RETRIABLE_STATES:
            outcome.skipped.append((run, f"is {run.get_state_display().lower()}"))
            continue
        if not may_act_on_task(actor, run.job_name):
            outcome.skipped.append((run, _lacking(run)))
            continue
        try:
            new = _retry(run, actor)
        except (lifecycle.AlreadyActive, NotRetriable) as error:
            outcome.skipped.append((run, str(error)))
            continue
        outcome.done.append(new)
        audit(actor, "run.retry", new, {"retry_of": run.task_id, "job": run.job_name, "bulk": True})
    audit(actor, "runs.retry_bulk", None, {
        "retried": [r.task_id for r in outcome.done],
        "skipped": {
            **{r.task_id: why for r, why in outcome.skipped},
            **dict.fromkeys(outcome.unknown, UNKNOWN),
        },
        "filters": filters.as_dict() if filters else None,
    })  # fmt: skip
    return outcome


def run_cancel(run: Run, *, actor: Actor, terminate: bool = False) -> lifecycle.CancelOutcome:
    """Queued: the run becomes REVOKED and never starts (stored in the database, so it holds
    across worker restarts and while no worker is online). Running: it stops at its next
    progress point; `terminate=True` also kills the process running it. A job's own
    permission is needed to cancel it, as to launch or retry it; a run of a plain task (not a
    registered job), superuser, as every action on one."""
    _require_cancel(actor, run)
    result = lifecycle.request_cancel(run.task_id, by=actor.label, terminate=terminate)
    if result is not lifecycle.CancelOutcome.ALREADY_FINAL:
        kill = terminate and result is lifecycle.CancelOutcome.REQUESTED
        broker.revoke(run.task_id, terminate=kill)
    audit(actor, "run.cancel", run, {"terminate": terminate, "outcome": result.value})
    return result


def runs_cancel_bulk(*, actor: Actor, ids: Sequence[int], terminate: bool = False) -> BulkOutcome:
    actor.require("tasks_app.cancel_run")
    outcome = BulkOutcome()
    for run in _bulk_targets(ids, None, None, retriable_only=False):
        if not may_act_on_task(actor, run.job_name):
            outcome.skipped.append((run, _lacking(run)))
            continue
        result = run_cancel(run, actor=actor, terminate=terminate)
        if result is lifecycle.CancelOutcome.ALREADY_FINAL:
            outcome.skipped.append((run, "had already finished"))
        else:
            outcome.done.append(run)
    return outcome


# --- helpers ---------------------------------------------------------------------------------


def _require_cancel(actor: Actor, run: Run) -> None:
    actor.require("tasks_app.cancel_run")
    require_task_permission(actor, run.job_name)


def _lacking(run: Run) -> str:
    """Why a bulk action skipped `run`, refused by `may_act_on_task`."""
    if find_job(run.job_name) is None:
        return "not a registered job: superusers only"
    return "needs a permission you lack"


def _check_limit(count: int, limit: int | None) -> None:
    cap = min(limit or settings.TASKDECK_BULK_LIMIT, settings.TASKDECK_BULK_LIMIT)
    if count > cap:
        raise BulkLimitExceeded(count, cap)


def _bulk_targets(
    ids: Sequence[int] | None,
    filters: selectors.RunFilter | None,
    limit: int | None,
    *,
    retriable_only: bool,
) -> list[Run]:
    limit = min(limit or settings.TASKDECK_BULK_LIMIT, settings.TASKDECK_BULK_LIMIT)
    if ids is not None:
        _check_limit(len(ids), limit)  # before a query with a huge IN list
        queryset: QuerySet[Run] = Run.objects.filter(pk__in=list(ids))
    elif filters is not None:
        queryset = selectors.runs_matching(filters)
    else:
        raise ServiceError("Give run ids or a filter.")
    if retriable_only:
        queryset = queryset.filter(state__in=sorted(RETRIABLE_STATES))
    runs = list(queryset.order_by("-queued_at", "-id")[: limit + 1])
    if len(runs) > limit:
        raise BulkLimitExceeded(len(runs), limit)
    return runs


def _jsonable(options: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in options.items()}
