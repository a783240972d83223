"""The Celery task classes behind the ledger.

`TaskdeckTask` is the app's default task class (`Celery(task_cls=...)`), so plain
`@shared_task` tasks are recorded too:
- `apply_async` records the run as PENDING before the message is sent, and removes it again if
  the broker cannot take the message, so no run waits forever for a message that never left;
- `__call__` refuses to run a run that was cancelled while queued or is already final (a
  duplicate delivery), keeps its heartbeat while it runs, and turns a cancellation seen at a
  progress point into REVOKED.
`JobTask` adds what `@job` needs: JSON parameters in, typed values and a JobContext to the job.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from celery import Task
from celery.exceptions import Ignore
from celery.utils import uuid
from kombu.exceptions import OperationalError

from .context import JobContext, ProgressSnapshot, ProgressStore
from .errors import BadInput, BrokerUnavailable, JobCancelled
from .heartbeat import heartbeat
from .params import ParamsError
from .registry import JobSpec, find_job

if TYPE_CHECKING:
    from celery.result import AsyncResult

    from ..lifecycle import QueuedRun, StartOutcome
    from ..models import Run, RunSource

logger = logging.getLogger(__name__)

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
    """Who launches a run and why; passed to apply_async as `taskdeck_launch=`."""

    source: RunSource
    actor_user_id: int | None = None
    actor_label: str = ""
    retry_of: Run | None = None
    schedule_name: str = ""  # "Run now" on a schedule (beat names it in a header instead)


class _StartOutcomes(threading.local):
    """Hands the STARTED outcome from the result backend to `__call__` (same thread)."""

    def __init__(self) -> None:
        self.by_task_id: dict[str, StartOutcome] = {}


start_outcomes = _StartOutcomes()


class TaskdeckTask(Task):  # type: ignore[type-arg]
    track_started = True
    # What happens when a pool process dies running the task (tasks_app.jobs.request).
    Request = "tasks_app.jobs.request:TaskdeckRequest"

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
        if unrecorded or self._already_recorded(task_id):
            # Celery's own tasks, housekeeping jobs, or a retry / re-queue of a recorded run.
            return super().apply_async(
                args, kwargs, task_id, producer, link, link_error, shadow, **options
            )
        from .. import lifecycle

        queued, sendable = self._queued_run(
            list(args or ()), dict(kwargs or {}), task_id, launch, options
        )
        if not sendable:
            return self.AsyncResult(queued.task_id)
        run = lifecycle.record_queued(queued)
        options.setdefault("retry_policy", LAUNCH_RETRY_POLICY)
        options.setdefault("queue", queued.queue or None)
        try:
            return super().apply_async(
                tuple(queued.args), dict(queued.params), run.task_id, producer, link, link_error,
                shadow,
                **options,
            )  # fmt: skip
        except (OperationalError, OSError) as error:
            lifecycle.forget_queued(run.task_id)
            raise BrokerUnavailable(
                f"The broker is unavailable, so {self.name} was not queued: {error}"
            ) from error

    @staticmethod
    def _already_recorded(task_id: str | None) -> bool:
        from ..models import Run

        return task_id is not None and Run.objects.filter(task_id=task_id).exists()

    def _queued_run(
        self,
        args: list[Any],
        kwargs: dict[str, Any],
        task_id: str | None,
        launch: Launch | None,
        options: Mapping[str, Any],
    ) -> tuple[QueuedRun, bool]:
        """The ledger row for this launch, and whether to send it: a schedule's launch with
        invalid parameters is recorded as a failed run instead (beat has nobody to tell)."""
        from .. import lifecycle
        from ..models import RunSource

        headers = options.get("headers") or {}
        schedule_name = str(
            headers.get("periodic_task_name") or (launch.schedule_name if launch else "")
        )
        if launch is None:
            launch = Launch(
                source=RunSource.SCHEDULE if schedule_name else RunSource.CODE,
                actor_label=schedule_name or "code",
            )
        spec = find_job(self.name)
        queued = lifecycle.QueuedRun(
            task_id=task_id or uuid(),
            job_name=self.name,
            params=kwargs,
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
        if spec is None:
            return queued, True
        try:
            if args:
                raise ParamsError({"__all__": ["Jobs take keyword parameters only."]})
            params = spec.params.validate(kwargs)
        except ParamsError as error:
            if launch.source == RunSource.SCHEDULE:
                lifecycle.record_failed_launch(
                    queued, f"Schedule {schedule_name!r} has invalid parameters: {error}"
                )
                return queued, False
            raise
        return replace(queued, params=params, unique_key=spec.key_for(params)), True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ..lifecycle import StartOutcome

        request = self.request
        if request.called_directly or not request.id:
            return self.run(*args, **kwargs)
        outcome = start_outcomes.by_task_id.pop(request.id, StartOutcome.STARTED)
        if outcome is not StartOutcome.STARTED:
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


class JobTask(TaskdeckTask):
    """The task class of `@job` functions."""


def run_job_body(task: Task, spec: JobSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:  # type: ignore[type-arg]
    """Turn the message's JSON parameters into typed values and call the job with a context."""
    if args:
        raise BadInput(f"{spec.name} takes keyword parameters only.")
    try:
        values = spec.params.to_python(kwargs)
    except ParamsError as error:
        raise BadInput(f"Invalid parameters for {spec.name}: {error}") from error
    ctx = getattr(task.request, "taskdeck_context", None)
    if ctx is None:  # called directly, outside a worker
        from .testing import RecordingStore

        ctx = JobContext(task_id="direct-call", job_name=spec.name, store=RecordingStore())
    return ctx.result_with_counters(spec.func(ctx, **values))


class LedgerProgressStore(ProgressStore):
    def __init__(self, task_id: str, retries: int) -> None:
        self.task_id = task_id
        self.retries = retries

    def write(self, snapshot: ProgressSnapshot, log_lines: list[str]) -> bool:
        from django.db import InterfaceError, OperationalError

        from .. import lifecycle
        from ..db import drop_if_broken

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
            # must not fail the job for that. Once, on a new connection; any other error stands.
            if not drop_if_broken():
                raise
            logger.warning("Progress of %s: database connection lost, reconnecting", self.task_id)
            return write()

    def save_artifact(self, filename: str, content: bytes) -> str:
        from .. import lifecycle

        return lifecycle.attach_artifact(self.task_id, filename, content)


def _eta(options: Mapping[str, Any]) -> datetime | None:
    from datetime import timedelta

    from django.utils import timezone

    eta = options.get("eta")
    if isinstance(eta, datetime):
        return eta
    countdown = options.get("countdown")
    if countdown:
        return timezone.now() + timedelta(seconds=float(countdown))
    return None
