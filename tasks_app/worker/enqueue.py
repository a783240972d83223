"""The one launch path: validate once, write the PENDING run, publish, undo on broker refusal.

Every way a run starts goes through `enqueue`: the services (form, API, retry, a schedule's
"Run now"), beat and plain `.delay()` / `.apply_async()` in code (through the task class's
`apply_async`). It returns the Run it wrote, so no caller reads the row back. `enqueue_many`
is the same path for many runs of one job: one INSERT for all their rows, then the messages
on one producer, each built as `enqueue` builds it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from celery import Task
from celery.result import AsyncResult
from celery.utils import uuid
from django.utils import timezone
from kombu.exceptions import OperationalError

from ..jobs.errors import BrokerUnavailable
from ..jobs.params import ParamsError
from ..jobs.registry import find_job
from ..models import Run, RunSource
from . import lifecycle

# How hard to try the broker at launch before telling the caller it is unavailable: quick, so
# an operator sees the error in a second or two instead of a hung page.
LAUNCH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}


@dataclass(frozen=True)
class Launch:
    """Who launches a run and why; `apply_async(..., taskdeck_launch=Launch(...))` in code."""

    source: RunSource
    actor_user_id: int | None = None
    actor_label: str = ""
    retry_of: Run | None = None
    schedule_name: str = ""  # "Run now" on a schedule (beat names it in a header instead)


@dataclass(frozen=True)
class Enqueued:
    """The run written (queued, or failed for a schedule's invalid parameters) and Celery's
    result."""

    run: Run
    result: AsyncResult[Any]


def enqueue(
    task: Task,  # type: ignore[type-arg]
    params: Mapping[str, Any],
    *,
    launch: Launch,
    options: Mapping[str, Any] | None = None,
    args: Sequence[Any] = (),
) -> Run:
    """Validate (once: already-validated parameters pass through), record PENDING, publish.

    Raises ParamsError, lifecycle.AlreadyActive or BrokerUnavailable; nothing is queued then.
    """
    return enqueue_message(task, list(args), params, launch=launch, options=options).run


def enqueue_message(
    task: Task,  # type: ignore[type-arg]
    args: list[Any],
    params: Mapping[str, Any],
    *,
    launch: Launch | None,
    options: Mapping[str, Any] | None = None,
    task_id: str | None = None,
) -> Enqueued:
    """`enqueue` for the task class's `apply_async`, which also gets calls without a Launch
    (code, beat) and must hand Celery's AsyncResult back."""
    options = dict(options or {})
    queued = _queued_run(task.name, args, params, task_id, launch, options)
    spec = find_job(task.name)
    if spec is not None:
        try:
            if args:
                raise ParamsError({"__all__": ["Jobs take keyword parameters only."]})
            valid = spec.params.validate(params)
        except ParamsError as error:
            if queued.source != RunSource.SCHEDULE:
                raise
            # Beat has nobody to tell: the run is recorded as failed instead of lost silently.
            run = lifecycle.record_failed_launch(
                queued, f"Schedule {queued.schedule_name!r} has invalid parameters: {error}"
            )
            return Enqueued(run, task.AsyncResult(run.task_id))
        queued = replace(queued, params=valid, unique_key=spec.key_for(valid))
    run = lifecycle.record_queued(queued)
    options.setdefault("retry_policy", LAUNCH_RETRY_POLICY)
    options.setdefault("queue", queued.queue or None)
    try:
        # Celery's own apply_async, past the task class's override: the run is recorded.
        result = Task.apply_async(task, tuple(args), dict(queued.params), run.task_id, **options)
    except (OperationalError, OSError) as error:
        lifecycle.forget_queued(run.task_id)
        raise BrokerUnavailable(
            f"The broker is unavailable, so {task.name} was not queued: {error}"
        ) from error
    return Enqueued(run, result)


class PartlyQueued(BrokerUnavailable):
    """The broker failed part way through a batch: the runs in `queued` were sent (their rows
    stand), the other `unsent` were not (their rows are removed)."""

    def __init__(self, job_name: str, queued: list[Run], unsent: int, error: Exception) -> None:
        self.queued = queued
        self.unsent = unsent
        total = len(queued) + unsent
        super().__init__(
            f"The broker failed after {len(queued)} of {total} runs of {job_name} were queued; "
            f"the other {unsent} were not: {error}"
        )


def enqueue_many(
    task: Task,  # type: ignore[type-arg]
    items: Sequence[Mapping[str, Any]],
    *,
    launch: Launch,
    options: Mapping[str, Any] | None = None,
) -> list[Run]:
    """`enqueue` for many runs of one job with the same launch and options, in their order:
    each validated (already-validated parameters pass through), all PENDING rows in one
    INSERT, then one message each on one producer.

    Raises ParamsError (of the first invalid item) or lifecycle.AlreadyActive before anything
    is written; BrokerUnavailable if the broker took none of the messages (no row is left), or
    PartlyQueued if it failed part way (the rows of the messages it took stay, no other)."""
    options = dict(options or {})
    spec = find_job(task.name)
    queued: list[lifecycle.QueuedRun] = []
    for params in items:
        one = _queued_run(task.name, [], params, None, launch, options)
        if spec is not None:
            valid = spec.params.validate(params)
            one = replace(one, params=valid, unique_key=spec.key_for(valid))
        queued.append(one)
    runs = lifecycle.record_queued_many(queued)
    options.setdefault("retry_policy", LAUNCH_RETRY_POLICY)
    options.setdefault("queue", (queued[0].queue if queued else "") or None)
    sent = 0
    try:
        # One producer (and its connection) for the batch, instead of one from the pool each.
        with task.app.producer_or_acquire() as producer:
            for run in runs:
                Task.apply_async(
                    task, (), dict(run.params), run.task_id, producer=producer, **options
                )
                sent += 1
    except Exception as error:
        # Whatever stopped the batch, no row may wait for a message that was never sent.
        lifecycle.forget_queued_many([run.task_id for run in runs[sent:]])
        if not isinstance(error, OperationalError | OSError):
            raise
        if sent:
            raise PartlyQueued(task.name, runs[:sent], len(runs) - sent, error) from error
        raise BrokerUnavailable(
            f"The broker is unavailable, so {task.name} was not queued: {error}"
        ) from error
    return runs


# The batch's counterparts of lifecycle.record_queued / forget_queued: one statement each.
# They belong beside those in lifecycle; they are here while that module is being changed.


def _queued_run(
    job_name: str,
    args: list[Any],
    params: Mapping[str, Any],
    task_id: str | None,
    launch: Launch | None,
    options: Mapping[str, Any],
) -> lifecycle.QueuedRun:
    headers = options.get("headers") or {}
    schedule_name = str(
        headers.get("periodic_task_name") or (launch.schedule_name if launch else "")
    )
    if launch is None:
        launch = Launch(
            source=RunSource.SCHEDULE if schedule_name else RunSource.CODE,
            actor_label=schedule_name or "code",
        )
    spec = find_job(job_name)
    return lifecycle.QueuedRun(
        task_id=task_id or uuid(),
        job_name=job_name,
        params=params,
        args=args,
        source=launch.source,
        actor_user_id=launch.actor_user_id,
        actor_label=launch.actor_label,
        schedule_name=schedule_name,
        retry_of=launch.retry_of,
        queue=str(options.get("queue") or (spec.queue if spec else "") or ""),
        priority=options.get("priority"),
        eta=_eta(options),
    )


def _eta(options: Mapping[str, Any]) -> datetime | None:
    eta = options.get("eta")
    if isinstance(eta, datetime):
        return eta
    countdown = options.get("countdown")
    if countdown:
        return timezone.now() + timedelta(seconds=float(countdown))
    return None
