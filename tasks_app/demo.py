"""Demo jobs for trying Taskdeck and for its browser tests; on when TASKDECK_DEMO_JOBS is set."""

from __future__ import annotations

import random
import time
from typing import Annotated

from annotated_types import Ge, Le
from celery import shared_task

from .jobs.context import JobContext
from .jobs.params import Param
from .jobs.registry import job


@job(name="demo.progress", title="Demo: progress", queue="default", retry="no_retry")
def progress(
    ctx: JobContext,
    steps: Annotated[int, Ge(1), Le(10_000), Param(help="How many steps to take.")] = 100,
    step_seconds: Annotated[float, Ge(0), Le(10), Param(help="Seconds each step takes.")] = 0.1,
) -> dict[str, int]:
    """Takes `steps` steps, reporting progress after each."""
    for step in range(1, steps + 1):
        time.sleep(step_seconds)
        ctx.progress(step, steps, f"Step {step} of {steps}")
    ctx.log(f"Took {steps} steps.")
    return {"steps": steps}


@job(
    name="demo.recount",
    title="Demo: recount (idempotent)",
    queue="default",
    retry="no_retry",
    idempotent=True,
)
def recount(
    ctx: JobContext,
    to: Annotated[int, Ge(1), Le(10_000), Param(help="Count up to this number.")] = 50,
    step_seconds: Annotated[float, Ge(0), Le(10)] = 0.1,
) -> int:
    """Counts from the start every time, so running it again is harmless: if its worker dies it
    is re-queued rather than marked lost."""
    for n in range(1, to + 1):
        time.sleep(step_seconds)
        ctx.progress(n, to, f"Counted to {n}")
    return to


@job(name="demo.flaky", title="Demo: flaky", queue="default", retry="no_retry")
def flaky(
    ctx: JobContext,
    failure_rate: Annotated[
        float, Ge(0), Le(1), Param(help="Chance of failing, from 0 to 1.")
    ] = 0.5,
) -> str:
    """Fails at random, at the given rate."""
    if random.random() < failure_rate:  # noqa: S311 - a demo, not cryptography
        raise RuntimeError(f"demo.flaky failed (failure rate {failure_rate:.0%}).")
    return "ok"


@job(name="demo.sensitive", title="Demo: sensitive parameter", retry="no_retry")
def sensitive(
    ctx: JobContext,
    password: Annotated[str, Param(sensitive=True, help="Masked everywhere after launch.")],
    label: str = "",
) -> dict[str, object]:
    """Uses a secret without revealing it: pages, results and logs show it masked."""
    ctx.log(f"Received a secret of {len(password)} characters for {label!r}.")
    return {"secret_length": len(password), "label": label}


@job(
    name="demo.limited",
    title="Demo: two at a time",
    queue="default",
    retry="no_retry",
    concurrency=2,
)
def limited(
    ctx: JobContext,
    seconds: Annotated[float, Ge(0), Le(600), Param(help="How long the run takes.")] = 5.0,
) -> float:
    """At most two runs execute at once (concurrency=2 in its code; change it on this page):
    launch more and the others wait in the queue for a slot."""
    steps = 10
    for step in range(1, steps + 1):
        time.sleep(seconds / steps)
        ctx.progress(step, steps, f"{seconds * step / steps:.1f} of {seconds:g} s")
    return seconds


@shared_task(name="demo.add")
def add(x: int, y: int) -> int:
    """A plain Celery task, not a @job: such tasks are recorded in the ledger too."""
    return x + y
