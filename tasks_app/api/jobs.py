"""Jobs: what can be launched, with each job's parameters as JSON Schema, and each job's
concurrency limit (read and changed at runtime)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema
from pydantic import StrictInt

from .. import services
from ..jobs.registry import all_jobs
from ..services import job_limits
from .auth import actor
from .errors import ApiError, responses
from .schemas import In, JobOut

router = Router(tags=["jobs"])


@router.get("/jobs", response=responses({200: list[JobOut]}), summary="Registered jobs")
def jobs(request: HttpRequest) -> list[dict[str, Any]]:
    caller = actor(request)
    return [
        {
            "name": spec.name,
            "title": spec.title,
            "description": spec.description,
            "queue": spec.queue,
            "retry": spec.retry.name,
            "unique": spec.unique,
            "idempotent": spec.idempotent,
            "sensitive": sorted(spec.sensitive),
            "can_launch": services.may_launch(caller, spec),
            "params_schema": spec.params.json_schema(),
        }
        for spec in all_jobs()
    ]


class ConcurrencyOut(Schema):
    job: str
    limit: int | None = Field(description="The limit in force; null: no limit.")
    code_limit: int | None = Field(description="`@job(concurrency=N)` in the code.")
    source: str = Field(description="`operator` (set at runtime) or `code`.")
    running: int | None = Field(description="Runs holding a slot now; null: unknown.")
    waiting: int | None = Field(description="Queued runs waiting for a slot; null: unknown.")
    updated_by: str
    updated_at: datetime | None


class ConcurrencyIn(In):
    concurrency: StrictInt | None = Field(
        default=None, description="At most this many runs at once (1 or more); null: no limit."
    )
    use_code_default: bool = Field(
        default=False, description="Drop the runtime value: the code's limit applies again."
    )


def _concurrency_out(found: job_limits.JobConcurrency) -> dict[str, Any]:
    return {
        "job": found.job_name,
        "limit": found.limit,
        "code_limit": found.code_limit,
        "source": found.source,
        "running": found.running,
        "waiting": found.waiting,
        "updated_by": found.updated_by,
        "updated_at": found.updated_at,
    }


@router.get(
    "/jobs/{name}/concurrency",
    response=responses({200: ConcurrencyOut}, 404),
    summary="A job's concurrency limit",
)
def concurrency(request: HttpRequest, name: str) -> dict[str, Any]:
    actor(request)
    try:
        return _concurrency_out(job_limits.job_concurrency(name))
    except services.UnknownJob:
        raise ApiError(404, f"No job named {name}.") from None


@router.put(
    "/jobs/{name}/concurrency",
    response=responses({200: ConcurrencyOut}, 404, 503),
    summary="Change a job's concurrency limit",
)
def concurrency_set(request: HttpRequest, name: str, payload: ConcurrencyIn) -> dict[str, Any]:
    if "concurrency" not in payload.model_fields_set and not payload.use_code_default:
        raise ApiError(
            400,
            "Invalid concurrency limit.",
            {"concurrency": ["Required: a whole number from 1, or null for no limit."]},
        )
    try:
        found = job_limits.job_limit_set(
            name,
            payload.concurrency,
            actor=actor(request),
            use_code_default=payload.use_code_default,
        )
    except services.UnknownJob:
        raise ApiError(404, f"No job named {name}.") from None
    except services.FieldErrors as error:
        raise ApiError(
            400,
            "Invalid concurrency limit.",
            {field: [message] for field, message in error.errors.items()},
        ) from None
    return _concurrency_out(found)
