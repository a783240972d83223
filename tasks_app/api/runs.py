"""Runs: launch (one or many), history, one run, cancel, retry (one or many)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import Query, Router, Status

from .. import selectors, services
from ..models import Run, RunSource
from ..selectors import RunFilter
from ..selectors.runs import search_text_error
from ..services.runs import UNKNOWN, rerun_params, run_rerun
from .auth import actor
from .errors import ApiError, field_errors, refuse_sealed_input, responses
from .schemas import (
    BatchUnavailableOut,
    BulkRetryIn,
    BulkRetryOut,
    CancelIn,
    CancelOut,
    RetryIn,
    RunBatchIn,
    RunBatchOut,
    RunCreateIn,
    RunFilterIn,
    RunOut,
    RunPageOut,
    run_summary,
)

router = Router(tags=["runs"])


class RunQuery(RunFilterIn):
    cursor: str | None = None
    limit: int = 50


def run_out(task_id: str) -> dict[str, Any]:
    """One run with its details. For a caller who just acted on it (which needs the job's
    permission, as reading does); `GET /runs/{task_id}` checks `require_run_read` first."""
    detail = selectors.run_detail(task_id)
    if detail is None:
        raise ApiError(404, f"No run {task_id}.")
    run = detail.run
    return {
        **run_summary(run),
        "params": detail.params,
        "args": list(run.args or []),
        "priority": run.priority,
        "eta": run.eta,
        "worker": run.worker,
        "attempts": run.attempts,
        "retries": run.retries,
        "duration_seconds": detail.duration_seconds,
        "progress": detail.progress.__dict__,
        "result": detail.result_data,
        "error": run.error,
        "traceback": detail.traceback,
        "retry_of": run.retry_of.task_id if run.retry_of else None,
        "root": run.root.task_id if run.root else None,
        "retried_by": [r.task_id for r in detail.retried_by],
        "cancel_requested_at": run.cancel_requested_at,
        "cancel_requested_by": run.cancel_requested_by,
    }


def to_filter(data: RunFilterIn) -> RunFilter:
    if data.since and data.until and data.since >= data.until:
        raise ApiError(400, "Invalid filter.", {"until": ["Must be after since."]})
    if (problem := search_text_error(data.q)) is not None:
        raise ApiError(400, "Invalid filter.", {"q": [problem]})
    return RunFilter(
        states=tuple(data.state),
        job_name=data.job.strip(),
        source=data.source,
        actor_label=data.launched_by.strip(),
        schedule_name=data.schedule.strip(),
        since=data.since,
        until=data.until,
        text=data.q.strip(),
    )


@router.post("/runs", response=responses({201: RunOut}, 409, 503), summary="Launch a job")
def launch(request: HttpRequest, body: RunCreateIn) -> Status[dict[str, Any]]:
    options = services.LaunchOptions(**body.options.model_dump())
    refuse_sealed_input(body.params)
    try:
        run = services.job_launch(
            body.job, body.params, actor=actor(request), options=options, source=RunSource.API
        )
    except services.UnknownJob:
        raise ApiError(400, "Unknown job.", {"job": [f"No job named {body.job}."]}) from None
    except services.ParamsError as error:
        raise ApiError(400, "Invalid parameters.", field_errors("params", error.errors)) from None
    except services.InvalidOptions as error:
        raise _invalid_options(error) from None
    return Status(201, run_out(run.task_id))


# Before "/runs/{task_id}": Django would take "batch" for a task id.
@router.post(
    "/runs/batch",
    response={**responses({201: RunBatchOut}, 409), 503: BatchUnavailableOut},
    summary="Launch a job many times",
    description=(
        "One run per item (its `params`), all with the same `options`, at most "
        f"{settings.TASKDECK_BULK_LIMIT} items. All or nothing: any invalid item is a 400 "
        "naming it (`items.3.params.steps`) and nothing is queued. A 503 lists in `queued` the "
        "runs queued before the broker failed, if any (the first items); the others were not."
    ),
)
def launch_batch(request: HttpRequest, body: RunBatchIn) -> Status[dict[str, Any]]:
    options = services.LaunchOptions(**body.options.model_dump())
    forged: dict[str, list[str]] = {}
    for index, item in enumerate(body.items):
        try:
            refuse_sealed_input(item.params, prefix=f"items.{index}.params")
        except ApiError as error:
            forged.update(error.errors)
    if forged:
        raise ApiError(400, "Invalid parameters.", forged)
    try:
        runs = services.jobs_launch_many(
            body.job,
            [item.params for item in body.items],
            actor=actor(request),
            options=options,
            source=RunSource.API,
        )
    except services.UnknownJob:
        raise ApiError(400, "Unknown job.", {"job": [f"No job named {body.job}."]}) from None
    except services.InvalidBatch as error:
        raise ApiError(400, "Invalid items.", error.errors) from None
    except services.InvalidOptions as error:
        raise _invalid_options(error) from None
    except services.PartlyQueued as error:
        return Status(503, _unavailable([run.task_id for run in error.queued], error.unsent))
    except services.BrokerUnavailable:
        return Status(503, _unavailable([], len(body.items)))
    return Status(201, {"count": len(runs), "runs": [run_summary(run) for run in runs]})


def _invalid_options(error: services.InvalidOptions) -> ApiError:
    return ApiError(400, "Invalid options.", {f"options.{k}": [v] for k, v in error.errors.items()})


def _unavailable(queued: list[str], unsent: int) -> dict[str, Any]:
    """The 503 of a batch: which runs were queued. As for one launch, the broker's own error
    (which names its address) is not shown."""
    if not queued:
        return {"detail": "The broker is unavailable, so nothing was queued. Try again.",
                "errors": {}, "queued": []}  # fmt: skip
    total = len(queued) + unsent
    return {
        "detail": (
            f"The broker failed after {len(queued)} of {total} runs were queued; "
            f"the other {unsent} were not. Send them again."
        ),
        "errors": {"items": [f"Items {len(queued)} to {total - 1} were not queued."]},
        "queued": queued,
    }


@router.get("/runs", response=responses({200: RunPageOut}), summary="Run history")
def runs(request: HttpRequest, query: Query[RunQuery]) -> dict[str, Any]:
    if not 1 <= query.limit <= 200:
        raise ApiError(400, "Invalid limit.", {"limit": ["Between 1 and 200."]})
    filters = services.readable_filter(actor(request), to_filter(query))
    if query.cursor and selectors.decode_cursor(query.cursor) is None:
        raise ApiError(400, "Invalid cursor.", {"cursor": ["Not a cursor from this API."]})
    page = selectors.runs_page(filters, query.cursor, size=query.limit)
    return {"items": [run_summary(r) for r in page.runs], "next_cursor": page.next_cursor}


# Before "/runs/{task_id}": Django would take "retry" for a task id.
@router.post(
    "/runs/retry",
    response=responses({200: BulkRetryOut}, 503),
    summary="Retry many runs",
    description=(
        "Give `task_ids`, or a `filter` to retry every failed, cancelled or lost run matching "
        f"it; at most {settings.TASKDECK_BULK_LIMIT} at once (more is a 400). Task ids that "
        "match no run are in `skipped` with the reason `unknown`."
    ),
)
def retry_many(request: HttpRequest, body: BulkRetryIn) -> dict[str, Any]:
    if (body.task_ids is None) == (body.filter is None):
        raise ApiError(400, "Give task_ids or filter.", {"task_ids": ["Give this or filter."]})
    # The over-limit error names the field that was sent.
    given = "task_ids" if body.task_ids is not None else "filter"
    try:
        if body.task_ids is not None:
            outcome = services.runs_retry_bulk(actor=actor(request), task_ids=body.task_ids)
        else:
            assert body.filter is not None
            caller = actor(request)
            filters = services.readable_filter(caller, to_filter(body.filter))
            outcome = services.runs_retry_bulk(actor=caller, filters=filters)
    except services.BulkLimitExceeded as error:
        raise ApiError(400, str(error), {given: [str(error)]}) from None
    return {
        "retried": [run_summary(r) for r in outcome.done],
        "skipped": [
            *({"task_id": r.task_id, "reason": why} for r, why in outcome.skipped),
            *({"task_id": task_id, "reason": UNKNOWN} for task_id in outcome.unknown),
        ],
    }


@router.get(
    "/runs/{task_id}",
    response=responses({200: RunOut}, 404),
    summary="One run",
    description=(
        "A run of a job that declares a permission (`@job(permission=...)`) is shown only to "
        "callers with that permission (403 otherwise); the history lists it without details."
    ),
)
def run(request: HttpRequest, task_id: str) -> dict[str, Any]:
    services.require_run_read(actor(request), _run(task_id))
    return run_out(task_id)


@router.get(
    "/runs/retry",
    response=responses({200: RunOut}, 404),
    summary="One run, whose task id is `retry`",
    description="The bulk retry's path read as `GET /runs/{task_id}` (a 404, in practice).",
)
def run_named_retry(request: HttpRequest) -> dict[str, Any]:
    """Django matches the path before the method, so GET here must answer as for a task id."""
    services.require_run_read(actor(request), _run("retry"))
    return run_out("retry")


@router.post(
    "/runs/{task_id}/cancel", response=responses({200: CancelOut}, 404), summary="Cancel a run"
)
def cancel(request: HttpRequest, task_id: str, body: CancelIn) -> dict[str, Any]:
    target = _run(task_id)
    outcome = services.run_cancel(target, actor=actor(request), terminate=body.terminate)
    return {"outcome": outcome.value, "run": run_out(task_id)}


@router.post(
    "/runs/{task_id}/retry",
    response=responses({201: RunOut}, 404, 409, 503),
    summary="Retry a run, as it was or with changed parameters",
    description=(
        "Without a body (or with `{}`), a failed, cancelled or lost run again with exactly the "
        "same parameters. With `params`, a finished run again with those parameters changed "
        "(it needs the permission to launch the job too). Either way the new run's `retry_of` "
        "is the original."
    ),
)
def retry(
    request: HttpRequest, task_id: str, body: RetryIn | None = None
) -> Status[dict[str, Any]]:
    original = _run(task_id)
    caller = actor(request)
    if body is None or body.params is None:
        new = services.run_retry(original, actor=caller)
    else:
        refuse_sealed_input(body.params, original.params)
        try:
            new = run_rerun(original, rerun_params(original, body.params), actor=caller)
        except services.ParamsError as error:
            raise ApiError(
                400, "Invalid parameters.", field_errors("params", error.errors)
            ) from None
    return Status(201, run_out(new.task_id))


@router.get(
    "/runs/batch",
    response=responses({200: RunOut}, 404),
    summary="One run, whose task id is `batch`",
    description="The batch launch's path read as `GET /runs/{task_id}` (a 404, in practice).",
)
def run_named_batch(request: HttpRequest) -> dict[str, Any]:
    """As `run_named_retry`, for the batch launch's path."""
    services.require_run_read(actor(request), _run("batch"))
    return run_out("batch")


def _run(task_id: str) -> Run:
    found = Run.objects.filter(task_id=task_id).first()
    if found is None:
        raise ApiError(404, f"No run {task_id}.")
    return found
