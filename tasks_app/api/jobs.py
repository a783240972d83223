"""Jobs: what can be launched, with each job's parameters as JSON Schema."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from ..jobs.registry import all_jobs
from .auth import actor
from .errors import responses
from .schemas import JobOut

router = Router(tags=["jobs"])


@router.get("/jobs", response=responses({200: list[JobOut]}), summary="Registered jobs")
def jobs(request: HttpRequest) -> list[dict[str, Any]]:
    caller = actor(request)
    may_launch = caller.has_perm("tasks_app.launch_job")
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
            "can_launch": spec.ledger
            and may_launch
            and (not spec.permission or caller.has_perm(spec.permission)),
            "params_schema": spec.params.json_schema(),
        }
        for spec in all_jobs()
    ]
