"""The worker-side request of Taskdeck's tasks (`TaskdeckTask.Request`).

When a pool process dies running a task (the OOM killer, a SIGKILL, a segfault), Celery's main
process notices and raises WorkerLostError for it. Celery then re-queues the message of a
late-acknowledged job with reject_on_worker_lost (every time: a job that kills its process
would loop forever) and records a plain FAILURE for any other. Taskdeck gives the run the same
verdict its reaper gives a run whose worker went silent: re-queued once if the job is
idempotent, LOST otherwise (`reaper.record_worker_lost`).

When the broker connection drops, Celery terminates the running late-acknowledged (idempotent)
jobs, since the broker will deliver their messages again, and records them as RETRY. Redis
delivers such a message again only after the visibility timeout (12 hours), or never if it lost
its data, and the reaper leaves waiting runs alone: the run would sit in RETRY all that time.
Taskdeck records nothing instead: the run stays running with a heartbeat that has stopped, and
the reaper re-queues it once, as it does for any run whose worker died. (Should Redis deliver
the old message after all, the run is final by then and the delivery is refused.)
"""

from __future__ import annotations

import logging
from typing import Any

from billiard.einfo import ExceptionWithTraceback  # type: ignore[attr-defined]  # not in the stubs
from billiard.exceptions import WorkerLostError
from celery.worker.request import Request

from .reaper import record_worker_lost

logger = logging.getLogger(__name__)


class TaskdeckRequest(Request):
    def cancel(self, pool: Any, signal: Any = None, emit_retry: bool = True) -> None:
        """Celery's cancel of a running task when the broker connection is lost (on shutdown
        Celery itself passes emit_retry=False for late-acknowledged tasks)."""
        super().cancel(pool, signal, emit_retry=emit_retry and not self.task.acks_late)

    def on_failure(
        self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False
    ) -> None:
        exc = exc_info.exception
        if isinstance(exc, ExceptionWithTraceback):
            exc = exc.exc
        cancelled = getattr(self, "_already_cancelled", False)  # by cancel(): not a death
        if isinstance(exc, WorkerLostError) and not cancelled:
            redelivered = bool(self.task.acks_late and self.task.reject_on_worker_lost)
            try:
                record_worker_lost(self.id, str(exc), redelivered=redelivered)
            except Exception:  # the database may be down too: the reaper settles it later
                logger.exception("Could not record the lost worker of %s", self.id)
        super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
