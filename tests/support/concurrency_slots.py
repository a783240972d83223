"""Slots of a limited job taken (and runs waiting for one) in Redis, as workers would, for tests
of the pages and the API that show the counts without running anything; and how many runs
overlapped, for the tests that do run them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from tasks_app.models import Run
from tasks_app.worker import presence, slots


@contextmanager
def slots_taken(job_name: str, *, held: int, waiting: int) -> Iterator[None]:
    limit = held
    holders = [f"held-{n}" for n in range(held)]
    for task_id in holders:
        assert slots.leases.acquire(job_name, task_id, limit) is slots.Acquired.TAKEN
    for n in range(waiting):
        assert slots.leases.acquire(job_name, f"waiting-{n}", limit) is slots.Acquired.FULL
    try:
        yield
    finally:
        for task_id in holders:
            slots.leases.release(task_id)
        presence.client().delete(slots.key(job_name), slots.waiting_key(job_name))


def max_overlap(runs: Sequence[Run]) -> int:
    """The most runs whose [started, finished] spans overlap at one moment. Each span holds the
    run's execution (recorded before it starts, after it ends), so this bounds the real
    overlap from above."""
    events: list[tuple[datetime, int]] = []
    for run in runs:
        assert run.started_at is not None
        assert run.finished_at is not None
        events += [(run.started_at, 1), (run.finished_at, -1)]
    current = peak = 0
    for _, step in sorted(events):  # an end before a start at the same instant
        current += step
        peak = max(peak, current)
    return peak
