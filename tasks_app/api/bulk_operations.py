"""Bulk operations: retry or cancel every run matching a filter, in the background.

Two routers, around the runs router: `router` before it, or `/runs/bulk-operations` would be
read as `/runs/{task_id}`; `item_router` after it, so `/runs/bulk-operations/retry` and
`.../cancel` still reach a run whose task id is `bulk-operations`."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from ..models import BulkOperation, RunSource
from ..services import bulk_operations as bulk
from .auth import actor
from .errors import ApiError, responses
from .runs import to_filter
from .schemas import In, RunFilterIn

router = Router(tags=["runs"])
item_router = Router(tags=["runs"])


class BulkFilterIn(RunFilterIn):
    # At most every state once: a longer list is a mistake, not a bigger filter.
    state: list[Literal[
        "PENDING", "STARTED", "PROGRESS", "RETRY", "SUCCESS", "FAILURE", "REVOKED", "LOST"
    ]] = Field(default_factory=list, max_length=8)  # fmt: skip


class BulkOperationIn(In):
    action: Literal["retry", "cancel"] = Field(
        description="`retry` acts on failed and lost runs, `cancel` on queued and running ones."
    )
    filters: BulkFilterIn = Field(default_factory=BulkFilterIn)
    confirm_count: int | None = Field(
        default=None,
        ge=0,
        le=10**9,
        description=(
            "The number of runs that match, as a preview or an earlier 400 said: required when "
            f"more than {settings.TASKDECK_BULK_LIMIT} match, and checked whenever given."
        ),
    )


class BulkOperationOut(Schema):
    id: int
    action: str
    filters: dict[str, Any]
    state: str
    interrupted: bool
    requested_by: str
    created_at: datetime
    finished_at: datetime | None
    max_run_id: int
    expected: int
    done: int
    skipped: int
    percent: int
    error: str
    run: str | None = Field(description="The task id of the job run doing the work.")


class BulkOperationListOut(Schema):
    items: list[BulkOperationOut]


def operation_out(operation: BulkOperation) -> dict[str, Any]:
    handled = operation.done + operation.skipped
    if operation.state == "done":
        percent = 100
    else:
        percent = min(100, handled * 100 // operation.expected) if operation.expected else 0
    return {
        "id": operation.pk,
        "action": operation.action,
        "filters": operation.filters,
        "state": operation.state,
        "interrupted": bulk.is_interrupted(operation),
        "requested_by": operation.requested_by_label,
        "created_at": operation.created_at,
        "finished_at": operation.finished_at,
        "max_run_id": operation.max_run_id,
        "expected": operation.expected,
        "done": operation.done,
        "skipped": operation.skipped,
        "percent": percent,
        "error": operation.error,
        "run": operation.run.task_id if operation.run else None,
    }


@router.post(
    "/runs/bulk-operations",
    response=responses({202: BulkOperationOut}, 503),
    summary="Retry or cancel every run matching a filter, in the background",
    description=(
        "Fixes the matching set now (runs up to the newest id; for a retry, finished by now) "
        "and starts a job that works through it in batches; follow it with "
        "`GET /runs/bulk-operations/{pk}`. Retry acts on failed and lost runs not retried yet; "
        "cancel on queued and running ones; runs of jobs the caller may not act on are "
        f"skipped. Above {settings.TASKDECK_BULK_LIMIT} runs, `confirm_count` must be the "
        "number that matches (a 400 naming `confirm_count` says it)."
    ),
)
def create(request: HttpRequest, body: BulkOperationIn) -> Status[dict[str, Any]]:
    filters = to_filter(body.filters)
    try:
        operation = bulk.bulk_operation_request(
            actor=actor(request),
            action=body.action,
            filters=filters,
            confirm_count=body.confirm_count,
            source=RunSource.API,
        )
    except (bulk.ConfirmationRequired, bulk.NothingToDo) as error:
        raise ApiError(400, str(error), {k: [v] for k, v in error.errors.items()}) from None
    return Status(202, operation_out(_operation(request, operation.pk)))


@router.get(
    "/runs/bulk-operations",
    response=responses({200: BulkOperationListOut}),
    summary="Recent bulk operations",
    description="The 50 most recent, newest first.",
)
def operations(request: HttpRequest) -> dict[str, Any]:
    recent = bulk.visible_operations(actor(request)).order_by("-id")[:50]
    return {"items": [operation_out(operation) for operation in recent]}


@item_router.get(
    "/runs/bulk-operations/{pk}",
    response=responses({200: BulkOperationOut}, 404),
    summary="One bulk operation and its progress",
)
def operation(request: HttpRequest, pk: int) -> dict[str, Any]:
    return operation_out(_operation(request, pk))


def _operation(request: HttpRequest, operation_id: int) -> BulkOperation:
    found = bulk.visible_operations(actor(request)).filter(pk=operation_id).first()
    if found is None:
        raise ApiError(404, f"No bulk operation {operation_id}.")
    return found
