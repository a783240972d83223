"""Test a job function directly, with a context that records instead of writing the ledger.

    from tasks_app.jobs.testing import run_job
    outcome = run_job("demo.progress", steps=3, step_seconds=0)
    assert outcome.progress[-1].done == 3

Parameters go through the job's schema exactly as on a worker (validated, JSON, typed again),
so a test sees what a real run would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .context import JobContext, ProgressSnapshot
from .context import RecordingStore as RecordingStore  # re-exported: tests build it
from .registry import get_job


@dataclass
class JobOutcome:
    result: Any
    context: JobContext
    store: RecordingStore

    @property
    def progress(self) -> list[ProgressSnapshot]:
        return self.store.writes

    @property
    def log(self) -> list[str]:
        return self.store.log_lines

    @property
    def counters(self) -> dict[str, int]:
        return dict(self.context.counters)


def run_job(
    name: str,
    *,
    write_interval: float = 0.0,
    cancel_after_writes: int | None = None,
    **params: Any,
) -> JobOutcome:
    """Run the job's function in this process. `write_interval=0` records every progress call.
    Raises what the job raises (JobCancelled included)."""
    spec = get_job(name)
    message_kwargs = json.loads(json.dumps(spec.params.validate(params)))
    store = RecordingStore(cancel_after_writes=cancel_after_writes)
    ctx = JobContext(task_id="test", job_name=name, store=store, write_interval=write_interval)
    try:
        result = spec.func(ctx, **spec.params.to_python(message_kwargs))
    finally:
        ctx.flush()
    return JobOutcome(ctx.result_with_counters(result), ctx, store)
