"""The Celery task class behind the ledger.

`TaskdeckTask` is the app's default task class (`Celery(task_cls=...)`), so plain
`@shared_task` tasks and `@job` functions alike are recorded:
- `apply_async` hands every launch to `enqueue`, which records the run as PENDING before the
  message is sent, and removes it again if the broker cannot take the message, so no run waits
  forever for a message that never left;
- `__call__` refuses to run a run that was cancelled while queued or is already final (a
  duplicate delivery), keeps its heartbeat while it runs, and turns a cancellation seen at a
  progress point into REVOKED.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task
from celery.exceptions import Ignore
from celery.result import AsyncResult
from django.db import InterfaceError, OperationalError, connection

from ..jobs.context import JobContext, ProgressSnapshot, ProgressStore
from ..jobs.errors import JobCancelled
from ..jobs.registry import find_job
from ..models import Run
from . import lifecycle
from .backend import start_outcomes
from .db import drop_if_broken
from .enqueue import Launch, enqueue_message
from .heartbeat import heartbeat

logger = logging.getLogger(__name__)


class TaskdeckTask(Task):  # type: ignore[type-arg]
    track_started = True
    # What happens when a pool process dies running the task (tasks_app.worker.request).
    Request = "tasks_app.worker.request:TaskdeckRequest"

    def apply_async(
        self,
        args: Any = None,
        kwargs: Any = None,
        task_id: str | None = None,
        producer: Any = None,
        link: Any = None,
        link_error: Any = None,
        shadow: str | None = None,
        **options: Any,
    ) -> AsyncResult[Any]:
        launch: Launch | None = options.pop("taskdeck_launch", None)
        spec = find_job(self.name)
        unrecorded = self.name.startswith("celery.") or (spec is not None and not spec.ledger)
        if unrecorded or _already_recorded(task_id):
            # Celery's own tasks, housekeeping jobs, or a retry / re-queue of a recorded run.
            return super().apply_async(
                args, kwargs, task_id, producer, link, link_error, shadow, **options
            )
        celery_options = {
            **options, "producer": producer, "link": link, "link_error": link_error,
            "shadow": shadow,
        }  # fmt: skip
        return enqueue_message(
            self, list(args or ()), kwargs or {}, launch=launch, options=celery_options,
            task_id=task_id,
        ).result  # fmt: skip

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if request.called_directly or not request.id:
            return self.run(*args, **kwargs)
        outcome = start_outcomes.take(request.id)
        if outcome is not lifecycle.StartOutcome.STARTED:
            logger.info("Not running %s[%s]: %s", self.name, request.id, outcome.value)
            raise Ignore()
        ctx = worker_context(request.id, self.name, int(request.retries or 0))
        request.taskdeck_context = ctx  # type: ignore[attr-defined]  # read by run_job_body
        with heartbeat.running(request.id, ctx):
            try:
                return self.run(*args, **kwargs)
            except JobCancelled as cancelled:
                self.backend.mark_as_revoked(request.id, str(cancelled), request=request)
                raise Ignore() from cancelled
            finally:
                try:
                    ctx.flush()
                except Exception:
                    logger.exception("Could not store the last progress of %s", request.id)


def worker_context(task_id: str, job_name: str, retries: int) -> JobContext:
    """The context a job gets on a worker: progress goes to the ledger, and the heartbeat
    thread (which the caller registers it with) says when a write is due."""
    return JobContext(
        task_id=task_id,
        job_name=job_name,
        store=LedgerProgressStore(task_id, retries),
        self_timed=False,
    )


class LedgerProgressStore(ProgressStore):
    def __init__(self, task_id: str, retries: int) -> None:
        self.task_id = task_id
        self.retries = retries

    def write(self, snapshot: ProgressSnapshot, log_lines: list[str]) -> bool:
        def write() -> bool:
            return lifecycle.mark_progress(
                self.task_id,
                retries=self.retries,
                done=snapshot.done,
                total=snapshot.total,
                message=snapshot.message,
                new_log_lines=log_lines,
            )

        try:
            return write()
        except (InterfaceError, OperationalError):
            # The database dropped the connection (a restart, a failover): a progress write
            # must not fail the job for that. Once more, on a new connection (a broken one is
            # closed first; when the write took its transaction path, Django's rollback may
            # already have left a usable one). Inside the job's own transaction, and for any
            # other error, the error stands.
            if connection.in_atomic_block:
                raise
            drop_if_broken()
            logger.warning("Progress of %s: database connection lost, reconnecting", self.task_id)
            return write()

    def save_artifact(self, filename: str, content: bytes) -> str:
        return lifecycle.attach_artifact(self.task_id, filename, content)


def _already_recorded(task_id: str | None) -> bool:
    return task_id is not None and Run.objects.filter(task_id=task_id).exists()
