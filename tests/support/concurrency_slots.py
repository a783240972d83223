"""Slots of a limited job taken (and runs waiting for one) in Redis, as workers would, for tests
of the pages and the API that show the counts without running anything."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
