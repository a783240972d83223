"""Queues: list them with their depth and pause, pause one, resume one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from ..models import QueuePause
from ..selectors.workers import QueueRow, queues_overview
from ..services.queues import QueueChange, UnknownQueue, queue_pause, queue_resume
from .auth import actor
from .errors import ApiError, responses
from .schemas import NO_BODY

router = Router(tags=["queues"])


class QueueStateOut(Schema):
    name: str
    paused: bool
    paused_by: str | None = Field(description="Who paused it; null when it is not paused.")
    paused_at: datetime | None
    depth: int | None = Field(description="Messages waiting; null when the broker cannot say.")
    consumers: list[str] | None = Field(
        description="Online workers consuming it; null when the broker cannot say."
    )


class QueueListOut(Schema):
    broker_up: bool
    broker_error: str
    queues: list[QueueStateOut]


class QueueChangeOut(Schema):
    name: str
    paused: bool
    paused_by: str | None
    paused_at: datetime | None
    changed: bool = Field(description="False when the queue already was in that state.")
    workers_told: list[str] | None = Field(
        description=(
            "Online workers that confirmed; null when the broker is unreachable (then the "
            "answer is 202 and workers apply the change when they reach it again)."
        )
    )
    detail: str


def _pause_fields(pause: QueuePause | None) -> dict[str, Any]:
    return {
        "paused": pause is not None,
        "paused_by": pause.paused_by_label if pause is not None else None,
        "paused_at": pause.paused_at if pause is not None else None,
    }


def queue_out(row: QueueRow) -> dict[str, Any]:
    return {
        "name": row.name,
        **_pause_fields(row.pause),
        "depth": row.depth,
        "consumers": list(row.consumers) if row.consumers is not None else None,
    }


@router.get("/queues", response=responses({200: QueueListOut}), summary="List queues")
def queues(request: HttpRequest) -> dict[str, Any]:
    """Taskdeck's queues, then any other that a worker consumes or an operator paused."""
    seen = queues_overview()
    return {
        "broker_up": seen.snapshot.broker_up,
        "broker_error": seen.snapshot.error,
        "queues": [queue_out(row) for row in seen.rows],
    }


def _answer(change: QueueChange) -> Status[dict[str, Any]]:
    verb = "paused" if change.paused else "resumed"
    told = change.told
    if told.sent:
        detail = f"Queue {change.queue} {verb}; {len(told.workers)} online worker(s) confirmed."
    else:
        detail = (
            f"Queue {change.queue} {verb} in the database, but the workers were not told "
            f"({told.error}). Each worker applies it when it reaches the broker again."
        )
    body = {
        "name": change.queue,
        **_pause_fields(change.pause),
        "changed": change.changed,
        "workers_told": list(told.workers) if told.sent else None,
        "detail": detail,
    }
    return Status(200 if told.sent else 202, body)


DESCRIPTION = (
    "A queue is known if it is configured (or routed to) or an online worker consumes it; any "
    "other name is a 404. The change is stored first, then the online workers are told; if the "
    "broker is unreachable the answer is 202: the change stands and each worker applies it when "
    "it reaches the broker again (at start-up, or at its next heartbeat). Repeating is safe. "
    "Needs the permission `tasks_app.manage_queues`."
)


@router.post(
    "/queues/{name}/pause",
    response=responses({200: QueueChangeOut, 202: QueueChangeOut}, 404),
    summary="Pause a queue",
    description=f"No worker consumes a paused queue; its runs wait, queued. {DESCRIPTION}",
    openapi_extra=NO_BODY,
)
def pause(request: HttpRequest, name: str) -> Status[dict[str, Any]]:
    try:
        return _answer(queue_pause(name, actor=actor(request)))
    except UnknownQueue as error:
        raise ApiError(404, str(error)) from None


@router.post(
    "/queues/{name}/resume",
    response=responses({200: QueueChangeOut, 202: QueueChangeOut}, 404),
    summary="Resume a queue",
    description=f"Workers started with the queue consume it again. {DESCRIPTION}",
    openapi_extra=NO_BODY,
)
def resume(request: HttpRequest, name: str) -> Status[dict[str, Any]]:
    try:
        return _answer(queue_resume(name, actor=actor(request)))
    except UnknownQueue as error:
        raise ApiError(404, str(error)) from None
