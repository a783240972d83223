"""The Taskdeck job the throughput benchmark runs: a no-op through the full stack.

Loaded into the worker with `celery -A dashboard worker --include bench.jobs` and into the
publishing process by importing this module (after `django.setup()`).
"""

from __future__ import annotations

from tasks_app.jobs.context import JobContext
from tasks_app.jobs.registry import job

NOOP_JOB = "bench.noop"


@job(name=NOOP_JOB, title="Benchmark no-op", retry="no_retry")
def noop(ctx: JobContext) -> None:
    """Do nothing: what is left is the cost of the ledger, the result backend and Celery."""
    return None


STEPS_JOB = "bench.steps"


@job(name=STEPS_JOB, title="Benchmark steps", retry="no_retry")
def steps(ctx: JobContext, count: int = 5, step_seconds: float = 0.002) -> int:
    """A short job with progress, for the load benchmark's live pages to show."""
    import time

    for n in range(1, count + 1):
        time.sleep(step_seconds)
        ctx.progress(n, count, f"Step {n} of {count}")
    return count
