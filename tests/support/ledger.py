"""Rows in the run ledger for tests that need runs without running them (pages, API,
selectors, lifecycle rules). One helper, so every test builds runs the same way."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from django.utils import timezone

from tasks_app.models import Run, RunState


def make_run(
    state: RunState = RunState.FAILURE,
    *,
    job_name: str = "demo.flaky",
    minutes_ago: float = 0,
    **fields: Any,
) -> Run:
    """A run of `job_name` in `state`, queued `minutes_ago`; any other Run field by keyword.
    Its task id is a fresh UUID unless given."""
    values: dict[str, Any] = {
        "task_id": str(uuid.uuid4()),
        "job_name": job_name,
        "state": state,
        "queued_at": timezone.now() - timedelta(minutes=minutes_ago),
        **fields,
    }
    return Run.objects.create(**values)
