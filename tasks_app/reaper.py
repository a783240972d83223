"""Finds runs whose worker died: no heartbeat for TASKDECK_LOST_AFTER_SECONDS.

A non-idempotent run is marked LOST (final, never run again: at most once). A run of a job
declared idempotent is re-queued once with the same id and parameters (at least once); if it is
lost again it is marked LOST.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from celery import current_app
from django.conf import settings

from . import lifecycle
from .backend import ledger_backend
from .jobs.registry import find_job
from .models import AuditEntry, Run

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
        requeue = spec is not None and spec.idempotent and run.requeues == 0
        if requeue and _requeue(run, f"Worker lost ({silence}{worker}); re-queued once."):
            outcome.requeued.append(run.task_id)
            continue
        message = f"Worker lost: {silence}{worker}."
        if ledger_backend().record_lost(run.task_id, message):
            outcome.lost.append(run.task_id)
            _audit("run.lost", run, message)
    return outcome


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
