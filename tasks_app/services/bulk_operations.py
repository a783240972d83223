"""Retry or cancel every run matching a filter, however many: a `BulkOperation` done by the
built-in job `taskdeck.bulk_operation` in batches, beyond the synchronous bulk cap.

The request fixes the matching set (runs up to the newest id, and for a retry, finished by the
request) and its count, which an operator confirms by typing it above the cap. The job then
walks that set by id, a keyset batch at a time; each batch's work (retries written, or runs
cancelled) commits with the operation's cursor and counters, so an interrupted job resumes after
the last committed batch and acts on no run twice. A run already retried is skipped, so even a
cursor lost with its batch could not retry a run twice. Retries are published after their
batch commits; a resumed operation first supersedes the retries of the last batch that may not
have been sent (`worker.bulk_operations`), so none waits forever and none runs twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from ..jobs.context import JobContext
from ..jobs.errors import BadInput
from ..jobs.registry import get_job
from ..models import (
    ACTIVE_STATES,
    FAILED_STATES,
    FINAL_STATES,
    BulkAction,
    BulkOperation,
    BulkState,
    Run,
    RunSource,
    RunState,
)
from ..selectors import RunFilter
from ..selectors.runs import (
    BATCH_FIELDS,
    latest_run_id,
    run_filter_from_dict,
    runs_actionable_count,
    runs_batch_after,
    runs_batch_before,
)
from ..worker import bulk_operations as ledger
from ..worker.enqueue import Launch, enqueue
from .common import Actor, audit
from .errors import AlreadyActive, BrokerUnavailable, FieldErrors, ServiceError
from .policy import may_act_on_task, readable_filter

JOB_NAME = "taskdeck.bulk_operation"
BATCH_SIZE = 500  # ids per batch: one INSERT of retries (or two UPDATEs) and one commit each
MAX_BATCH_SIZE = 2000


@dataclass(frozen=True)
class Kind:
    """What an action acts on and needs."""

    states: frozenset[str]
    permission: str
    verb: str  # "Retried"
    acts_on: str  # the runs it acts on, in words
    skips: str  # what it leaves alone, in words


KINDS: dict[str, Kind] = {
    BulkAction.RETRY: Kind(
        frozenset(FAILED_STATES),
        "tasks_app.retry_run",
        "Retried",
        "failed or lost",
        "Runs in other states, and failed runs already retried, are skipped.",
    ),
    BulkAction.CANCEL: Kind(
        frozenset(ACTIVE_STATES),
        "tasks_app.cancel_run",
        "Cancelled",
        "queued or running",
        "Finished runs are skipped; running ones stop at their next progress point.",
    ),
}


class ConfirmationRequired(FieldErrors):
    """The typed count is missing or is not the number of runs that match now."""


class NothingToDo(FieldErrors):
    """No run the action could act on matches the filter."""


@dataclass(frozen=True)
class BulkPreview:
    action: str
    count: int  # runs the action would act on now
    confirm: bool  # the count must be typed to confirm
    kind: Kind


def kind_of(action: str) -> Kind:
    kind = KINDS.get(action)
    if kind is None:
        raise FieldErrors({"action": f"Choose one of: {', '.join(KINDS)}."})
    return kind


def visible_operations(actor: Actor) -> QuerySet[BulkOperation]:
    """The operations `actor` may see: those of actions they may take themselves. A stored
    filter and its count were worked out with the requester's permissions (restricted jobs
    included), so they are shown only to operators who could have asked the same."""
    actions = [name for name, kind in KINDS.items() if actor.has_perm(kind.permission)]
    return BulkOperation.objects.select_related("run").filter(action__in=actions)


def bulk_operation_preview(actor: Actor, action: str, filters: RunFilter) -> BulkPreview:
    """How many runs `action` would act on now, and whether the count must be typed."""
    kind = kind_of(action)
    actor.require(kind.permission)
    filters = _in_utc(filters)
    count = _count(actor, kind, action, filters, latest_run_id(), timezone.now())
    return BulkPreview(action, count, count > settings.TASKDECK_BULK_LIMIT, kind)


def _count(
    actor: Actor, kind: Kind, action: str, filters: RunFilter, up_to_id: int, at: datetime
) -> int:
    # Its count must not confirm a guess at a restricted job's parameters.
    return runs_actionable_count(
        readable_filter(actor, filters),
        kind.states,
        up_to_id=up_to_id,
        finished_by=at if action == BulkAction.RETRY else None,
    )


def bulk_operation_request(
    *,
    actor: Actor,
    action: str,
    filters: RunFilter,
    confirm_count: int | None,
    source: RunSource = RunSource.FORM,
    batch_size: int = BATCH_SIZE,
    start: bool = True,
) -> BulkOperation:
    """Record the operation over the runs that match now and start its job. Above the bulk
    cap, `confirm_count` must be the number that matches (ConfirmationRequired otherwise);
    below it, if given, too. One audit entry with the filter and the count. Raises
    PermissionDenied, NothingToDo, ConfirmationRequired, or BrokerUnavailable (the operation is
    then recorded as failed). `start=False` records it only (resume starts it)."""
    kind = kind_of(action)
    actor.require(kind.permission)
    filters = _in_utc(filters)
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise FieldErrors({"batch_size": f"Between 1 and {MAX_BATCH_SIZE}."})
    with transaction.atomic():
        operation = BulkOperation.objects.create(
            action=action,
            filters=filters.as_dict(),
            requested_by_id=actor.user_id,
            requested_by_label=actor.label,
            max_run_id=latest_run_id(),
        )
        # The set is fixed now: up to this id, and (retry) finished by the request.
        count = _count(actor, kind, action, filters, operation.max_run_id, operation.created_at)
        _check_count(kind, count, confirm_count)
        operation.expected = count
        operation.save(update_fields=["expected"])
        audit(
            actor,
            "runs.bulk_operation",
            None,
            {"action": action, "filters": operation.filters, "count": count},
            target=("bulk_operation", str(operation.pk)),
        )
    if start:
        _start(operation, actor, source, batch_size, resuming=False)
    return operation


def _in_utc(filters: RunFilter) -> RunFilter:
    """Its times in UTC, as stored: a valid offset Python allows (up to 24 h) may be one the
    database does not (PostgreSQL: 15:59)."""
    return replace(
        filters,
        since=filters.since.astimezone(UTC) if filters.since else None,
        until=filters.until.astimezone(UTC) if filters.until else None,
    )


def _check_count(kind: Kind, count: int, confirm_count: int | None) -> None:
    if count == 0:
        raise NothingToDo({"filters": f"No {kind.acts_on} runs match this filter."})
    if confirm_count is None and count > settings.TASKDECK_BULK_LIMIT:
        raise ConfirmationRequired(
            {"confirm_count": f"{count} runs match: type {count} to confirm acting on them all."}
        )
    if confirm_count is not None and confirm_count != count:
        raise ConfirmationRequired(
            {"confirm_count": f"{count} runs match now, not {confirm_count}: type {count}."}
        )


def _start(
    operation: BulkOperation, actor: Actor, source: RunSource, batch_size: int, *, resuming: bool
) -> None:
    """Queue the job (its run is the operation's progress); a broker that refuses fails the
    operation, which nothing has touched yet."""
    spec = get_job(JOB_NAME)
    launch = Launch(source, actor.user_id, actor.label)
    params = {"operation_id": operation.pk, "batch_size": batch_size}
    try:
        run = enqueue(spec.task, params, launch=launch, options={"queue": spec.queue})
    except BrokerUnavailable as error:
        _fail(operation.pk, str(error), keep_running=resuming)
        raise
    except AlreadyActive:
        # The job is unique per operation: a double-clicked Resume, or its run retried by hand.
        raise ServiceError("This operation's job is already queued or running.") from None
    operation.run = run
    operation.error = ""
    BulkOperation.objects.filter(pk=operation.pk).update(run=run, error="")


def is_interrupted(operation: BulkOperation) -> bool:
    """Not finished, and no job is queued or running for it: it needs resuming."""
    if operation.state not in (BulkState.QUEUED, BulkState.RUNNING):
        return False
    run = operation.run
    return run is None or run.state in FINAL_STATES


def bulk_operation_resume(
    operation: BulkOperation, *, actor: Actor, batch_size: int | None = None
) -> BulkOperation:
    """Start a new job for an interrupted operation: it goes on after the last committed
    batch. Needs the action's permission; audited. The batch size is the interrupted job's
    (unless given), so recovery looks back over exactly one of its batches."""
    kind = kind_of(operation.action)
    actor.require(kind.permission)
    if not is_interrupted(operation):
        raise ServiceError("This operation is not interrupted: nothing to resume.")
    if batch_size is None:
        previous = (operation.run.params or {}) if operation.run else {}
        batch_size = int(previous.get("batch_size") or BATCH_SIZE)
    _start(operation, actor, RunSource.FORM, batch_size, resuming=True)
    audit(
        actor,
        "runs.bulk_operation_resume",
        None,
        {"cursor": operation.cursor},
        target=("bulk_operation", str(operation.pk)),
    )
    return operation


# --- the job ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """An operation as its job works on it."""

    operation_id: int
    action: str
    kind: Kind
    actor: Actor
    filters: RunFilter
    finished_by: datetime | None
    launch: Launch
    batch_size: int
    resumed: bool  # it had started before: the last batch may be unsent
    reasons: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    _allowed: dict[str, bool] = field(default_factory=dict)

    def may_act_on(self, job_name: str) -> bool:
        """Per-run permission, as the synchronous bulk actions check it (restricted jobs)."""
        if job_name not in self._allowed:
            self._allowed[job_name] = may_act_on_task(self.actor, job_name)
        return self._allowed[job_name]


@dataclass(frozen=True)
class Batch:
    unsent: list[Run]  # retries written with the batch, to publish
    finished: bool


def bulk_operation_prepare(operation_id: int, batch_size: int = BATCH_SIZE) -> Plan | None:
    """Mark the operation running and return how to work on it; None if it is finished or
    can no longer run (its requester lost the permission: it fails, saying so)."""
    operation = BulkOperation.objects.select_related("requested_by").filter(pk=operation_id).first()
    if operation is None:
        raise BadInput(f"No bulk operation {operation_id}.")
    if operation.state in (BulkState.DONE, BulkState.FAILED):
        return None
    kind = kind_of(operation.action)
    user = operation.requested_by
    actor = Actor(user=user)
    if user is None or not actor.has_perm(kind.permission):
        _fail(operation.pk, f"{operation.requested_by_label} may no longer do this.")
        return None
    resumed = operation.state == BulkState.RUNNING
    BulkOperation.objects.filter(pk=operation.pk).update(state=BulkState.RUNNING)
    return Plan(
        operation_id=operation.pk,
        action=operation.action,
        kind=kind,
        actor=actor,
        filters=readable_filter(actor, run_filter_from_dict(operation.filters)),
        finished_by=operation.created_at if operation.action == BulkAction.RETRY else None,
        launch=Launch(RunSource.RETRY, actor.user_id, operation.requested_by_label),
        batch_size=batch_size,
        resumed=resumed,
    )


def bulk_operation_recover(plan: Plan) -> int:
    """Before a resumed retry goes on: supersede the last batch's retries that are still
    queued (their message may never have been sent) and write and send fresh ones, in one
    transaction with the supersession, so a crash here leaves the same state to recover.
    Returns how many were replaced."""
    if plan.action != BulkAction.RETRY:
        return 0  # a cancellation is stored in the database: nothing to send
    operation = BulkOperation.objects.get(pk=plan.operation_id)
    last = runs_batch_before(
        plan.filters,
        plan.kind.states,
        up_to_id=operation.cursor,
        size=plan.batch_size,
        finished_by=plan.finished_by,
    )
    candidates = Run.objects.filter(
        retry_of_id__in=last,
        source=RunSource.RETRY,
        state=RunState.PENDING,
        actor_user_id=plan.actor.user_id,
        queued_at__gte=operation.created_at,
    ).values_list("task_id", flat=True)
    note = (
        f"Superseded: bulk operation #{operation.pk} was interrupted before this retry was "
        "known to be sent; a new retry replaces it."
    )
    with transaction.atomic():
        superseded = ledger.supersede_unsent(list(candidates), note)
        originals = list(
            Run.objects.filter(
                pk__in=Run.objects.filter(task_id__in=superseded).values("retry_of_id")
            )
            .order_by("id")
            .only(*BATCH_FIELDS)
        )
        written = ledger.write_retries(originals, plan.launch)
    ledger.publish(written.runs)
    return len(written.runs)


def bulk_operation_batch(plan: Plan) -> Batch:
    """One batch, in one transaction with the cursor and counters: the next runs after the
    cursor acted on (retries written, not sent: see `bulk_operation_publish`) or skipped; or,
    with none left, the operation finished (one audit entry with the outcome)."""
    with transaction.atomic():
        operation = BulkOperation.objects.select_for_update().get(pk=plan.operation_id)
        if operation.state != BulkState.RUNNING:
            return Batch([], finished=True)
        runs = runs_batch_after(
            plan.filters,
            plan.kind.states,
            after_id=operation.cursor,
            up_to_id=operation.max_run_id,
            size=plan.batch_size,
            finished_by=plan.finished_by,
        )
        if not runs:
            _finish(operation, plan)
            return Batch([], finished=True)
        if plan.action == BulkAction.RETRY:
            unsent, done, skipped = _retry_batch(plan, runs)
        else:
            unsent, (done, skipped) = [], _cancel_batch(plan, runs)
        operation.cursor = runs[-1].pk
        operation.done += done
        operation.skipped += skipped
        operation.save(update_fields=["cursor", "done", "skipped"])
    plan.batches += 1
    return Batch(unsent, finished=False)


def _retry_batch(plan: Plan, runs: list[Run]) -> tuple[list[Run], int, int]:
    retried = set(
        Run.objects.filter(retry_of_id__in=[run.pk for run in runs]).values_list(
            "retry_of_id", flat=True
        )
    )
    eligible: list[Run] = []
    skipped = 0
    for run in runs:
        if run.pk in retried:
            reason = "already retried"
        elif not plan.may_act_on(run.job_name):
            reason = "needs a permission the requester lacks"
        else:
            eligible.append(run)
            continue
        plan.reasons[reason] += 1
        skipped += 1
    written = ledger.write_retries(eligible, plan.launch)
    plan.reasons.update(why for _, why in written.skipped)
    return written.runs, len(written.runs), skipped + len(written.skipped)


def _cancel_batch(plan: Plan, runs: list[Run]) -> tuple[int, int]:
    allowed = [run.pk for run in runs if plan.may_act_on(run.job_name)]
    if lacking := len(runs) - len(allowed):
        plan.reasons["needs a permission the requester lacks"] += lacking
    outcome = ledger.cancel_runs(allowed, by=plan.actor.label or "bulk operation")
    done = outcome.revoked + outcome.requested
    if rest := len(allowed) - done:
        plan.reasons["already finished or being cancelled"] += rest
    return done, len(runs) - done


def bulk_operation_publish(batch: Batch) -> None:
    """Send the batch's retries (after its transaction committed)."""
    ledger.publish(batch.unsent)


def _finish(operation: BulkOperation, plan: Plan) -> None:
    gone = operation.expected - operation.done - operation.skipped
    if gone > 0:  # matched at the request, but not any more: finished or deleted since
        operation.skipped += gone
        plan.reasons["no longer matched (finished or deleted since the request)"] += gone
    operation.state = BulkState.DONE
    operation.finished_at = timezone.now()
    operation.save(update_fields=["state", "finished_at", "skipped"])
    audit(
        plan.actor,
        "runs.bulk_operation_done",
        None,
        {
            "action": operation.action,
            "done": operation.done,
            "skipped": operation.skipped,
            "skipped_reasons": dict(plan.reasons),
        },
        target=("bulk_operation", str(operation.pk)),
    )


def _fail(operation_id: int, error: str, *, keep_running: bool = False) -> None:
    """Record why the operation stopped. A running one stays running (resumable); one that
    never started, or may no longer run, fails."""
    changes: dict[str, Any] = {"error": error[:4000]}
    if not keep_running:
        changes.update(state=BulkState.FAILED, finished_at=timezone.now())
    BulkOperation.objects.filter(pk=operation_id).update(**changes)


def bulk_operation_work(ctx: JobContext, operation_id: int, batch_size: int) -> dict[str, Any]:
    """The job's body: recover if resumed, then batch after batch, publishing each batch's
    retries after it commits, with the operation's progress on the job's run."""
    plan = bulk_operation_prepare(operation_id, batch_size)
    if plan is None:
        return _summary(operation_id, None)
    try:
        if plan.resumed and (replaced := bulk_operation_recover(plan)):
            ctx.log(f"Replaced {replaced} retries the interrupted run may not have sent.")
        while True:
            batch = bulk_operation_batch(plan)
            bulk_operation_publish(batch)
            operation = BulkOperation.objects.get(pk=operation_id)
            handled = operation.done + operation.skipped
            ctx.progress(
                min(handled, operation.expected),
                operation.expected,
                f"{plan.kind.verb} {operation.done}, skipped {operation.skipped} "
                f"of {operation.expected}",
            )
            if batch.finished:
                break
    except BrokerUnavailable as error:
        _fail(operation_id, f"Interrupted: {error}", keep_running=True)
        raise
    return _summary(operation_id, plan)


def _summary(operation_id: int, plan: Plan | None) -> dict[str, Any]:
    operation = BulkOperation.objects.get(pk=operation_id)
    return {
        "operation": operation.pk,
        "state": operation.state,
        "done": operation.done,
        "skipped": operation.skipped,
        "batches": plan.batches if plan else 0,
        "skipped_reasons": dict(plan.reasons) if plan else {},
    }
