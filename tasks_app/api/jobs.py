"""Jobs: what can be launched, with each job's parameters as JSON Schema."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from .. import services
from ..jobs.registry import all_jobs
from .auth import actor
from .errors import responses
from .schemas import JobOut

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
