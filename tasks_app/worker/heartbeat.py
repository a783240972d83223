"""One background thread per worker process keeps running runs' heartbeats fresh.

The reaper marks a run LOST when its heartbeat is older than TASKDECK_LOST_AFTER_SECONDS, so a
run is only "running" while a live process says so. The same round trip reads cancellation
requests and hands them to the runs' contexts. The thread also ticks the contexts every progress
interval and does the progress writes they hand over at their next progress point: on its own
database connection, so the job computes on while the database commits, and a job that holds a
transaction open never takes its progress into it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import close_old_connections, connection

from ..jobs.context import JobContext
from . import lifecycle

logger = logging.getLogger(__name__)


def interval_seconds() -> float:
    return float(getattr(settings, "TASKDECK_HEARTBEAT_SECONDS", 10))


# Running contexts may write progress this often (about two writes a second).
PROGRESS_INTERVAL = 0.5


class Heartbeat:
    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Also run in a forked child: it inherits no thread, so it starts from nothing."""
        self._lock = threading.Lock()
        self._running: dict[str, JobContext] = {}
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    @contextmanager
    def running(self, task_id: str, ctx: JobContext) -> Iterator[None]:
        with self._lock:
            self._running[task_id] = ctx
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._loop, name="taskdeck-heartbeat", daemon=True
                )
                self._thread.start()
            if connection.vendor != "sqlite":
                # SQLite has one writer at a time, and a job holding a transaction holds it
                # (IMMEDIATE): this thread would wait on it, so there the job's thread writes.
                ctx.hand_over = self._wake.set
        try:
            yield
        finally:
            ctx.hand_over = None
            with self._lock:
                self._running.pop(task_id, None)

    def _loop(self) -> None:
        next_tick = next_beat = time.monotonic() + tick_seconds()
        while True:
            self._wake.wait(max(0.0, next_tick - time.monotonic()))
            self._wake.clear()  # before the writes: a hand-over from now on wakes the next wait
            with self._lock:
                running = dict(self._running)
            if not running:
                connection.close()  # this thread's own connection: none kept while idle
                next_tick = time.monotonic() + tick_seconds()
                continue
            for task_id, ctx in running.items():
                write_handed_over(task_id, ctx)
            now = time.monotonic()
            if now < next_tick:
                continue  # woken by a hand-over
            next_tick = now + tick_seconds()
            for ctx in running.values():
                ctx.mark_due()
            if now < next_beat:
                continue
            next_beat = now + interval_seconds()
            try:
                for task_id in lifecycle.heartbeat(running):
                    running[task_id].request_cancel()
            except Exception:
                # A database hiccup must not kill the thread; the next beat tries again.
                logger.exception("Heartbeat failed")
                connection.close()
            else:
                close_old_connections()  # honour CONN_MAX_AGE, drop a broken connection


def tick_seconds() -> float:
    return min(PROGRESS_INTERVAL, interval_seconds())


def write_handed_over(task_id: str, ctx: JobContext) -> None:
    """One context's handed-over write; a failure is logged and kept for the next write (the
    job's own final flush at the latest), never fatal to the thread or the job."""
    try:
        ctx.write_handed_over()
    except Exception:
        logger.exception("Progress write of %s failed", task_id)
        connection.close()


heartbeat = Heartbeat()
os.register_at_fork(after_in_child=heartbeat._reset)
