"""The one place that moves a run from state to state.

A state only moves forward. SUCCESS, FAILURE, REVOKED and LOST are final: nothing overwrites
them, whatever order messages arrive in. Among the other states, an event of an older attempt
(a lower Celery retry count) never overwrites a newer one. Every transition is a single
conditional UPDATE whose WHERE clause is built from the same table `accepts()` reads, so the rule
holds under concurrency without locks (two writers race; the database keeps one).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from django.core.files.base import ContentFile
from django.db import IntegrityError, connections, transaction
from django.db.models import F, Q
from django.utils import timezone

from ..alerts import evaluate as alerts
from ..models import ACTIVE_STATES, FINAL_STATES, Run, RunSource, RunState

# For each new state: the states it may replace. Final states replace any non-final one.
ALLOWED_PREVIOUS: dict[RunState, frozenset[RunState]] = {
    RunState.PENDING: frozenset(),  # only ever inserted
    RunState.STARTED: ACTIVE_STATES,  # includes a redelivered run starting again
    RunState.PROGRESS: frozenset({RunState.STARTED, RunState.PROGRESS}),
    RunState.RETRY: ACTIVE_STATES,
    **dict.fromkeys(FINAL_STATES, ACTIVE_STATES),
}

LOG_LINES_KEPT = 200
ERROR_CHARS_KEPT = 4000


def accepts(current: RunState, current_retries: int, new: RunState, new_retries: int) -> bool:
    """Whether an event `new` (of attempt `new_retries`) may replace the run's current state."""
    if current not in ALLOWED_PREVIOUS[new]:
        return False
    return new in FINAL_STATES or new_retries >= current_retries


def _may_become(new: RunState, retries: int) -> Q:
    """`accepts()` as a WHERE clause on the current row."""
    condition = Q(state__in=sorted(ALLOWED_PREVIOUS[new]))
    if new not in FINAL_STATES:
        condition &= Q(retries__lte=retries)
    return condition


# What each event sets, as SQL, for the result backend's one-statement path. The WHERE clause
# comes from ALLOWED_PREVIOUS like the ORM path's, so both apply the same rule.
_SETS: dict[RunState, str] = {
    RunState.STARTED: (
        "state = %(state)s, retries = %(retries)s, worker = %(worker)s, heartbeat_at = %(now)s, "
        "attempts = attempts + 1, started_at = %(now)s, error = '', slot_wait_since = NULL"
    ),
    RunState.RETRY: "state = %(state)s, retries = %(retries)s, error = %(error)s",
    RunState.PROGRESS: (
        "state = %(state)s, progress_done = %(done)s, progress_total = %(total)s, "
        "progress_message = %(message)s, progress_at = %(now)s, heartbeat_at = %(now)s, "
        "progress_writes = progress_writes + 1"
    ),
    **dict.fromkeys(FINAL_STATES, "state = %(state)s, finished_at = %(now)s, error = %(error)s"),
}


@functools.cache
def transition_sql(new: RunState) -> str:
    """`UPDATE tasks_app_run ... WHERE <accepts()>`, with named parameters task_id, state, now,
    retries, worker, error. A STARTED event also requires that no cancellation was requested."""
    allowed = ", ".join(f"'{state.value}'" for state in sorted(ALLOWED_PREVIOUS[new]))
    where = f"task_id = %(task_id)s AND state IN ({allowed})"
    if new not in FINAL_STATES:
        where += " AND retries <= %(retries)s"
    if new is RunState.STARTED:
        where += " AND cancel_requested_at IS NULL"
    # Built only from constants (state names, columns); every value is a bound parameter.
    return f"UPDATE {Run._meta.db_table} SET {_SETS[new]} WHERE {where}"  # noqa: S608


class AlreadyActive(Exception):
    """A run with the same uniqueness key is queued or running."""

    def __init__(self, existing: Run | None, unique_key: str) -> None:
        self.existing = existing
        self.unique_key = unique_key
        where = f"run {existing.task_id} ({existing.get_state_display()})" if existing else "a run"
        super().__init__(f"Not launched: {where} with the same key is already queued or running.")


@dataclass(frozen=True)
class QueuedRun:
    """What is known about a run when it is queued."""

    task_id: str
    job_name: str
    params: Mapping[str, Any]
    args: list[Any]
    source: RunSource = RunSource.CODE
    actor_user_id: int | None = None
    actor_label: str = ""
    schedule_name: str = ""
    retry_of: Run | None = None
    queue: str = ""
    priority: int | None = None
    eta: datetime | None = None
    unique_key: str | None = None

    def as_fields(self) -> dict[str, Any]:
        root = None
        if self.retry_of is not None:
            root = self.retry_of.root or self.retry_of
        return {
            "task_id": self.task_id,
            "job_name": self.job_name,
            "params": dict(self.params),
            "args": list(self.args),
            "source": self.source,
            "actor_user_id": self.actor_user_id,
            "actor_label": self.actor_label,
            "schedule_name": self.schedule_name,
            "retry_of": self.retry_of,
            "root": root,
            "queue": self.queue,
            "priority": self.priority,
            "eta": self.eta,
            "unique_key": self.unique_key,
            "queued_at": timezone.now(),
        }


def record_queued(queued: QueuedRun) -> Run:
    """Insert the PENDING run before its message is sent; refuse a duplicate unique key."""
    try:
        with transaction.atomic():
            return Run.objects.create(state=RunState.PENDING, **queued.as_fields())
    except IntegrityError:
        if queued.unique_key is None:
            raise
        existing = Run.objects.filter(
            unique_key=queued.unique_key, state__in=sorted(ACTIVE_STATES)
        ).first()
        raise AlreadyActive(existing, queued.unique_key) from None


def record_failed_launch(queued: QueuedRun, error: str) -> Run:
    """A launch that could not be sent (e.g. a schedule with invalid parameters): keep it
    visible as a failed run instead of dropping it silently."""
    now = timezone.now()
    fields = {**queued.as_fields(), "unique_key": None}
    run = Run.objects.create(state=RunState.FAILURE, finished_at=now, error=error, **fields)
    alerts.on_run_final(run.task_id, RunState.FAILURE)
    return run


def forget_queued(task_id: str) -> None:
    """The message was never sent: remove the PENDING row so no run waits forever."""
    Run.objects.filter(task_id=task_id, state=RunState.PENDING).delete()


def record_queued_many(queued: Sequence[QueuedRun]) -> list[Run]:
    """Insert the PENDING runs, all or none (SQLite may split the INSERT: one transaction);
    a unique key already queued or running refuses the batch, as `record_queued` one run."""
    rows = [Run(state=RunState.PENDING, **run.as_fields()) for run in queued]
    try:
        with transaction.atomic():
            return Run.objects.bulk_create(rows)
    except IntegrityError:
        keys = [run.unique_key for run in queued if run.unique_key is not None]
        if not keys:
            raise
        existing = Run.objects.filter(unique_key__in=keys, state__in=sorted(ACTIVE_STATES)).first()
        key = existing.unique_key if existing and existing.unique_key else keys[0]
        raise AlreadyActive(existing, key) from None


def forget_queued_many(task_ids: Sequence[str]) -> None:
    """Their messages were never sent: remove their PENDING rows."""
    if task_ids:
        Run.objects.filter(task_id__in=task_ids, state=RunState.PENDING).delete()


def ensure_recorded(queued: QueuedRun) -> None:
    """Record a run first seen by a worker (a task sent by name, bypassing apply_async)."""
    Run.objects.bulk_create(
        [Run(state=RunState.PENDING, **{**queued.as_fields(), "unique_key": None})],
        ignore_conflicts=True,
    )


def _transition(task_id: str, new: RunState, retries: int, **fields: Any) -> bool:
    updated = Run.objects.filter(_may_become(new, retries), task_id=task_id).update(
        state=new, **fields
    )
    return updated == 1


class StartOutcome(Enum):
    STARTED = "started"
    CANCELLED = "cancelled"  # cancelled while queued: must not run
    FINAL = "final"  # already final (a duplicate delivery): must not run again


def mark_started(task_id: str, *, retries: int, worker: str, first_seen: QueuedRun) -> StartOutcome:
    now = timezone.now()
    fields: dict[str, Any] = {
        "retries": retries,
        "worker": worker,
        "heartbeat_at": now,
        "attempts": F("attempts") + 1,
        "started_at": now,
        "error": "",
        "slot_wait_since": None,
    }
    not_cancelled = Q(cancel_requested_at__isnull=True)
    if Run.objects.filter(
        _may_become(RunState.STARTED, retries) & not_cancelled, task_id=task_id
    ).update(state=RunState.STARTED, **fields):
        return StartOutcome.STARTED
    row = Run.objects.filter(task_id=task_id).values("state", "cancel_requested_at").first()
    if row is None:
        ensure_recorded(first_seen)
        return mark_started(task_id, retries=retries, worker=worker, first_seen=first_seen)
    if row["state"] in FINAL_STATES:
        return StartOutcome.FINAL
    if row["cancel_requested_at"] is not None:
        mark_finished(task_id, RunState.REVOKED, error="Cancelled before it started.")
        return StartOutcome.CANCELLED
    return StartOutcome.FINAL  # an older attempt's late start: do not run it


def mark_slot_wait(task_id: str) -> bool:
    """A queued run found no free slot under its job's concurrency limit: it waits (the time it
    first did is kept). False when the run is final (cancelled while it waited): nothing is
    left to run. A run not recorded, or running (a duplicate delivery), waits all the same."""
    queued = [RunState.PENDING, RunState.RETRY]
    if Run.objects.filter(task_id=task_id, state__in=queued, slot_wait_since__isnull=True).update(
        slot_wait_since=timezone.now()
    ):
        return True
    return not Run.objects.filter(task_id=task_id, state__in=sorted(FINAL_STATES)).exists()


def mark_retry(task_id: str, *, retries: int, error: str) -> bool:
    return _transition(task_id, RunState.RETRY, retries, error=error[:ERROR_CHARS_KEPT])


def mark_finished(
    task_id: str, state: RunState, *, error: str = "", job_name: str | None = None
) -> bool:
    """Move to a final state (SUCCESS, FAILURE, REVOKED, LOST) unless already final. The alert
    rules hear of it (once the caller's transaction commits): a failure or a lost run may fire,
    a success may resolve; `job_name`, if the caller knows it, lets a success with nothing to
    resolve skip every query."""
    assert state in FINAL_STATES
    moved = _transition(
        task_id, state, 0, finished_at=timezone.now(), error=error[:ERROR_CHARS_KEPT]
    )
    if moved:
        alerts.on_run_final(task_id, state, job_name)
    return moved


def mark_progress(
    task_id: str,
    *,
    retries: int,
    done: int | None,
    total: int | None,
    message: str,
    new_log_lines: Iterable[str] = (),
) -> bool:
    """Store progress (and any buffered log lines); returns whether cancellation was requested.

    Without log lines this is one statement that also reads the cancellation flag."""
    lines_to_add = list(new_log_lines)
    if not lines_to_add:
        connection = connections[Run.objects.db]
        params: dict[str, Any] = {
            "task_id": task_id,
            "state": RunState.PROGRESS.value,
            "retries": retries,
            "done": done,
            "total": total,
            "message": message[:500],
            "now": connection.ops.adapt_datetimefield_value(timezone.now()),
        }
        sql = transition_sql(RunState.PROGRESS) + " RETURNING cancel_requested_at"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is not None:
            return row[0] is not None
        return cancel_requested(task_id)  # not moved (final, or an older attempt): ask
    new_log_lines = lines_to_add
    now = timezone.now()
    fields: dict[str, Any] = {
        "progress_done": done,
        "progress_total": total,
        "progress_message": message[:500],
        "progress_at": now,
        "heartbeat_at": now,
        "progress_writes": F("progress_writes") + 1,
    }
    lines = [{"at": now.isoformat(), "message": line[:2000]} for line in new_log_lines]
    with transaction.atomic():
        if lines:
            current = Run.objects.filter(task_id=task_id).values_list("log", flat=True).first()
            fields["log"] = ([*(current or []), *lines])[-LOG_LINES_KEPT:]
        _transition(task_id, RunState.PROGRESS, retries, **fields)
    return cancel_requested(task_id)


def mark_custom_state(
    task_id: str, *, retries: int, done: int | None, total: int | None, message: str
) -> bool:
    """A plain task's update_state() with a state of its own: shown as progress. Returns
    whether it was accepted (never over a final state)."""
    now = timezone.now()
    return _transition(
        task_id, RunState.PROGRESS, retries,
        progress_done=done, progress_total=total, progress_message=message[:500],
        progress_at=now, heartbeat_at=now, progress_writes=F("progress_writes") + 1,
    )  # fmt: skip


def cancel_requested(task_id: str) -> bool:
    return Run.objects.filter(task_id=task_id, cancel_requested_at__isnull=False).exists()


def heartbeat(task_ids: Iterable[str]) -> set[str]:
    """Refresh running runs' heartbeats; returns the ones whose cancellation was requested."""
    ids = list(task_ids)
    if not ids:
        return set()
    running = Run.objects.filter(task_id__in=ids, state__in=[RunState.STARTED, RunState.PROGRESS])
    running.update(heartbeat_at=timezone.now())
    return set(running.filter(cancel_requested_at__isnull=False).values_list("task_id", flat=True))


class CancelOutcome(Enum):
    REVOKED = "revoked"  # was queued: it is now final and will never start
    REQUESTED = "requested"  # is running: it stops at its next progress point
    ALREADY_FINAL = "already_final"


def request_cancel(task_id: str, *, by: str, terminate: bool) -> CancelOutcome:
    """Store the cancellation in the database, where it survives worker restarts."""
    now = timezone.now()
    queued = [RunState.PENDING, RunState.RETRY]
    stamp = {"cancel_requested_at": now, "cancel_requested_by": by, "cancel_terminate": terminate}
    with transaction.atomic():
        revoked = Run.objects.filter(task_id=task_id, state__in=queued).update(
            state=RunState.REVOKED, finished_at=now, error=f"Cancelled by {by}.", **stamp
        )
        if revoked:
            return CancelOutcome.REVOKED
        flagged = Run.objects.filter(
            task_id=task_id, state__in=[RunState.STARTED, RunState.PROGRESS]
        ).update(**stamp)
    return CancelOutcome.REQUESTED if flagged else CancelOutcome.ALREADY_FINAL


def stale_runs(older_than: timedelta) -> list[Run]:
    """Running runs whose worker has stopped sending heartbeats."""
    limit = timezone.now() - older_than
    return list(
        Run.objects.filter(
            state__in=[RunState.STARTED, RunState.PROGRESS], heartbeat_at__lt=limit
        ).order_by("heartbeat_at")[:500]
    )


def mark_requeued(task_id: str, *, error: str) -> bool:
    """A lost run of an idempotent job goes back to the queue once."""
    updated = Run.objects.filter(
        task_id=task_id, state__in=[RunState.STARTED, RunState.PROGRESS], requeues=0
    ).update(state=RunState.RETRY, requeues=F("requeues") + 1, error=error[:ERROR_CHARS_KEPT])
    return updated == 1


def attach_artifact(task_id: str, filename: str, content: bytes) -> str:
    """Store a file for the run (replacing an earlier one) and link it; returns its name."""
    run = Run.objects.get(task_id=task_id)
    if run.artifact:
        run.artifact.delete(save=False)
    run.artifact.save(f"{task_id}/{filename}", ContentFile(content), save=False)
    Run.objects.filter(pk=run.pk).update(artifact=run.artifact.name)
    return str(run.artifact.name)
