"""Finds runs whose worker died: no heartbeat for TASKDECK_LOST_AFTER_SECONDS.

A non-idempotent run is marked LOST (final, never run again: at most once). A run of a job
declared idempotent is re-queued once with the same id and parameters (at least once); if it is
lost again it is marked LOST.

Runs waiting for a slot under their job's concurrency limit are queued (PENDING or RETRY, with
`slot_wait_since`), never running, so they are not the reaper's: only a run that started has a
heartbeat to go silent. A dead worker's slots free themselves when their leases expire
(`tasks_app.worker.slots`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings

from ..jobs.registry import find_job
from ..models import AuditEntry, Run, RunState
from . import lifecycle
from .backend import ledger_backend

logger = logging.getLogger(__name__)


@dataclass
class ReapOutcome:
    lost: list[str] = field(default_factory=list)
    requeued: list[str] = field(default_factory=list)


def reap(lost_after: float | None = None) -> ReapOutcome:
    seconds = lost_after if lost_after is not None else settings.TASKDECK_LOST_AFTER_SECONDS
    outcome = ReapOutcome()
    for run in lifecycle.stale_runs(timedelta(seconds=seconds)):
        silence = f"no heartbeat for over {seconds:.0f} s"
        worker = f" from worker {run.worker}" if run.worker else ""
        spec = find_job(run.job_name)
        if spec is not None and spec.idempotent and run.requeues == 0:
            # Whatever `_requeue` answers, this run is judged: re-queued here, or by another
            # reaper running at the same time (a worker back from an outage takes the backlog
            # of reap tasks at once), or LOST when publishing failed. Never LOST on top of a
            # re-queue: that final state would refuse the re-queued message.
            if _requeue(run, f"Worker lost ({silence}{worker}); re-queued once."):
                outcome.requeued.append(run.task_id)
            continue
        message = f"Worker lost: {silence}{worker}."
        if ledger_backend().record_lost(run.task_id, message):
            outcome.lost.append(run.task_id)
            _audit("run.lost", run, message)
    return outcome


def record_worker_lost(task_id: str, reason: str, *, redelivered: bool) -> None:
    """A worker's pool process died running this run (OOM killer, SIGKILL, a crash), and
    Celery's main process noticed at once (WorkerLostError): the same verdict the reaper gives
    a silent run, without waiting for it. `redelivered`: Celery puts the message back in the
    queue (an idempotent job, late-acknowledged with reject_on_worker_lost).

    An idempotent run is re-queued once; when it dies again it is LOST, and the delivery Celery
    makes anyway is refused at start (final runs never start), so a job that kills its process
    every time is not run in an endless loop. Any other run is LOST (Celery would record a plain
    FAILURE). Nothing happens to a run that is not running (already final, or not started)."""
    running = [RunState.STARTED, RunState.PROGRESS]
    run = Run.objects.filter(task_id=task_id, state__in=running).first()
    if run is None:
        return
    worker = f" on worker {run.worker}" if run.worker else ""
    requeued = f"Worker lost ({reason}{worker}); re-queued once."
    if redelivered and lifecycle.mark_requeued(task_id, error=requeued):
        _audit("run.requeue", run, requeued)
        return
    again = " again" if redelivered else ""
    message = f"Worker lost{again}: {reason}{worker}."
    if ledger_backend().record_lost(task_id, message):
        _audit("run.lost", run, message)


def _requeue(run: Run, message: str) -> bool:
    if not lifecycle.mark_requeued(run.task_id, error=message):
        return False
    task = current_app.tasks[run.job_name]
    try:
        options: dict[str, Any] = {"queue": run.queue} if run.queue else {}
        task.apply_async(tuple(run.args), dict(run.params), task_id=run.task_id, **options)
    except Exception:
        logger.exception("Could not re-queue lost run %s", run.task_id)
        ledger_backend().record_lost(run.task_id, f"{message} Re-queueing failed.")
        return False
    _audit("run.requeue", run, message)
    return True


def _audit(action: str, run: Run, message: str) -> None:
    AuditEntry.objects.create(
        actor_label="reaper",
        action=action,
        target_type="run",
        target_id=run.task_id,
        details={"message": message, "worker": run.worker},
    )
