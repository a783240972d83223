"""The run-ledger side of a bulk operation (`services.bulk_operations`): write a batch of
retries, publish them, cancel a batch, and take back retries that may never have been sent.

Retries are written and published in two steps, an outbox: the PENDING rows are inserted in the
batch's transaction (with the operation's cursor), and their messages sent after it commits.
A crash between the two leaves rows whose message may or may not have reached the broker, and
nothing tells which: publishing again could run a retry twice, not publishing could leave it
queued forever. So the resumed operation *supersedes* them instead (`supersede_unsent`): one
conditional UPDATE moves each still-PENDING one to REVOKED (final: a worker that receives its
message, if it was sent, finds it final and does not run it), and a fresh retry replaces it.
A retry a worker already started was evidently sent and is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from celery import Task, current_app
from celery.utils import uuid
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from ..jobs.errors import BrokerUnavailable
from ..jobs.params import ParamsError
from ..jobs.registry import find_job
from ..models import QUEUED_STATES, RUNNING_STATES, Run, RunState
from . import lifecycle
from .enqueue import LAUNCH_RETRY_POLICY, Launch


@dataclass
class Written:
    """What `write_retries` did with a batch: the new PENDING runs, and the originals it left
    alone with the reason."""

    runs: list[Run] = field(default_factory=list)
    skipped: list[tuple[Run, str]] = field(default_factory=list)


def write_retries(originals: Sequence[Run], launch: Launch) -> Written:
    """Insert one PENDING retry per original (same task, parameters, arguments and queue, linked
    to it and its root), in the caller's transaction; nothing is sent. Runs of jobs with a
    uniqueness key are inserted one by one (a key already queued or running skips that run
    only); the rest in one INSERT."""
    written = Written()
    plain: list[lifecycle.QueuedRun] = []
    for original in originals:
        if current_app.tasks.get(original.job_name) is None:
            written.skipped.append((original, "its task is no longer registered"))
            continue
        spec = find_job(original.job_name)
        queued = lifecycle.QueuedRun(
            task_id=uuid(),
            job_name=original.job_name,
            params=dict(original.params or {}),
            args=list(original.args or []),
            source=launch.source,
            actor_user_id=launch.actor_user_id,
            actor_label=launch.actor_label,
            retry_of=_with_root(original),
            queue=original.queue or (spec.queue if spec else ""),
        )
        if spec is not None:
            try:
                if queued.args:
                    raise ParamsError({"__all__": ["Jobs take keyword parameters only."]})
                valid = spec.params.validate(queued.params)
            except ParamsError as error:
                # Field names only: a message may quote the value, and the job's result is
                # readable by staff who may not read this run's parameters.
                fields = ", ".join(sorted(error.errors))
                written.skipped.append((original, f"its parameters are no longer valid ({fields})"))
                continue
            queued = replace(queued, params=valid, unique_key=spec.key_for(valid))
        if queued.unique_key is None:
            plain.append(queued)
            continue
        try:
            written.runs.append(lifecycle.record_queued(queued))  # a savepoint of its own
        except lifecycle.AlreadyActive:
            written.skipped.append((original, "a run with the same key is queued or running"))
    written.runs.extend(lifecycle.record_queued_many(plain))
    return written


def _with_root(original: Run) -> Run:
    """`original` with its root set without a query (the batch read `root_id` only)."""
    if original.root_id is not None and not Run.root.is_cached(original):
        original.root = Run(pk=original.root_id)
    return original


def publish(runs: Sequence[Run]) -> None:
    """Send each run's message, on one producer, in order. Raises BrokerUnavailable if the
    broker failed: the rows stay (PENDING), for `supersede_unsent` to take back on resume."""
    if not runs:
        return
    sent = 0
    try:
        with current_app.producer_or_acquire() as producer:
            for run in runs:
                task = current_app.tasks[run.job_name]
                options: dict[str, Any] = {"queue": run.queue} if run.queue else {}
                Task.apply_async(
                    task,
                    tuple(run.args or ()),
                    dict(run.params or {}),
                    run.task_id,
                    producer=producer,
                    retry_policy=LAUNCH_RETRY_POLICY,
                    # Not kept in the job's request.children: 100k results would pile up in
                    # the worker (and in the job's stored result).
                    add_to_parent=False,
                    **options,
                )
                sent += 1
    except (OperationalError, OSError) as error:
        raise BrokerUnavailable(
            f"The broker failed after {sent} of {len(runs)} retries were sent: {error}"
        ) from error


def supersede_unsent(candidates: Sequence[str], note: str) -> list[str]:
    """Of these retries' task ids, move those still PENDING to REVOKED (with `note`), in one
    conditional UPDATE, and return them: each may never have been sent, and if it was,
    a worker now finds it final and skips it, so it can be replaced without running twice."""
    if not candidates:
        return []
    ids = list(candidates)
    now = timezone.now()
    with transaction.atomic():
        # The UPDATE decides (a worker's start and this race on the row; the database keeps
        # one); the rows it changed are then told apart by their finish time and note.
        Run.objects.filter(task_id__in=ids, state=RunState.PENDING).update(
            state=RunState.REVOKED, finished_at=now, error=note
        )
        return list(
            Run.objects.filter(
                task_id__in=ids, state=RunState.REVOKED, finished_at=now, error=note
            ).values_list("task_id", flat=True)
        )


@dataclass(frozen=True)
class Cancelled:
    revoked: int  # were queued: now final, never start
    requested: int  # were running: stop at their next progress point


def cancel_runs(ids: Sequence[int], by: str) -> Cancelled:
    """`lifecycle.request_cancel` for a batch, in two statements: the queued runs become
    REVOKED, the running ones get the stored cancel flag (their heartbeat or next progress
    point reads it). Nothing is broadcast: the stored request is what holds, as for a run
    cancelled while no worker is online."""
    now = timezone.now()
    stamp: dict[str, Any] = {
        "cancel_requested_at": now,
        "cancel_requested_by": by,
        "cancel_terminate": False,
    }
    revoked = Run.objects.filter(pk__in=list(ids), state__in=sorted(QUEUED_STATES)).update(
        state=RunState.REVOKED, finished_at=now, error=f"Cancelled by {by}.", **stamp
    )
    requested = Run.objects.filter(
        pk__in=list(ids), state__in=sorted(RUNNING_STATES), cancel_requested_at__isnull=True
    ).update(**stamp)
    return Cancelled(revoked=revoked, requested=requested)
