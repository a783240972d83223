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

A run of a job with a concurrency limit takes a slot before it reaches the pool, and frees it
when it ends (`tasks_app.worker.slots`); without a free slot it goes back to the queue to wait.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from billiard.einfo import ExceptionWithTraceback  # type: ignore[attr-defined]  # not in the stubs
from billiard.exceptions import WorkerLostError
from celery.exceptions import TaskRevokedError
from celery.worker.request import Request
from celery.worker.state import task_ready

from . import lifecycle, slots
from .reaper import record_worker_lost

logger = logging.getLogger(__name__)


class SlotBusy(TaskRevokedError):
    """The run waits for a slot: its delivery ends before the pool, as a revoked one's does
    (Celery's worker then frees the pool's put-lock it took for it)."""


class TaskdeckRequest(Request):
    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Celery's worker subclasses a task's Request class (`create_request_cls`) with fast
        `execute_using_pool` and `on_success` methods that never call up: wrap those two so a
        limited job's run takes a slot first and frees it when it succeeds."""
        super().__init_subclass__(**kwargs)
        if "execute_using_pool" in cls.__dict__:
            cls.execute_using_pool = _taking_a_slot(cls.__dict__["execute_using_pool"])  # type: ignore[method-assign]
        if "on_success" in cls.__dict__:
            cls.on_success = _freeing_the_slot(cls.__dict__["on_success"])  # type: ignore[method-assign]

    def wait_for_slot(self) -> None:
        """No slot: mark the run as waiting, publish its message again with a countdown, then
        acknowledge this delivery (in that order: a crash leaves a copy, never none). A run
        that turned final meanwhile (cancelled while it waited) is dropped instead."""
        message = self.message
        try:
            wanted = lifecycle.mark_slot_wait(self.id)
        except Exception:  # the database is down: keep the run waiting all the same
            logger.exception("Could not mark %s as waiting for a slot", self.id)
            wanted = True
        try:
            if wanted:
                delay = slots.wait_delay(slots.waits_of(message.headers or {}))
                slots.republish(message, delay)
            else:
                _stop_waiting(self)
        except Exception:
            logger.exception("Could not put %s back in the queue; returning it as is", self.id)
            self.reject(requeue=True)
        else:
            self.acknowledge()
        finally:
            task_ready(self)
        raise SlotBusy(self.id)

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
        try:
            super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
        finally:
            slots.leases.release(self.id)


def _taking_a_slot(execute: Callable[..., Any]) -> Callable[..., Any]:
    def execute_using_pool(self: TaskdeckRequest, pool: Any, **kwargs: Any) -> Any:
        limit = slots.limits.limit_for(self.name)
        if limit is None:  # the hot path: a cached dictionary lookup
            if slots.WAITS_HEADER in self.request_dict:  # it waited, then the limit was lifted
                _stop_waiting(self)
            return execute(self, pool, **kwargs)
        try:
            acquired = slots.leases.acquire(self.name, self.id, limit)
        except Exception:  # Redis did not answer: the run waits rather than break the limit
            logger.exception("Could not take a slot for %s", self.id)
            acquired = slots.Acquired.FULL
        if acquired is not slots.Acquired.TAKEN:
            self.wait_for_slot()
        try:
            return execute(self, pool, **kwargs)
        except BaseException:  # revoked meanwhile, or the pool refused it
            slots.leases.release(self.id)
            raise

    return execute_using_pool


def _stop_waiting(request: TaskdeckRequest) -> None:
    try:
        slots.stop_waiting(request.name, request.id)
    except Exception:  # only a count on a page: it ages out by itself
        logger.exception("Could not note that %s stopped waiting for a slot", request.id)


def _freeing_the_slot(on_success: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(self: TaskdeckRequest, failed__retval__runtime: Any, **kwargs: Any) -> Any:
        try:
            return on_success(self, failed__retval__runtime, **kwargs)
        finally:
            if slots.leases.holds(self.id):
                slots.leases.release(self.id)

    return wrapped
