"""One background thread per worker process keeps running runs' heartbeats fresh.

The reaper marks a run LOST when its heartbeat is older than TASKDECK_LOST_AFTER_SECONDS, so a
run is only "running" while a live process says so. The same round trip reads cancellation
requests and hands them to the runs' contexts.
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
        try:
            yield
        finally:
            with self._lock:
                self._running.pop(task_id, None)

    def _loop(self) -> None:
        next_beat = time.monotonic()
        while True:
            self._wake.wait(min(PROGRESS_INTERVAL, interval_seconds()))
            with self._lock:
                running = dict(self._running)
            if not running:
                connection.close()  # this thread's own connection: none kept while idle
                continue
            for ctx in running.values():
                ctx.mark_due()
            if time.monotonic() < next_beat:
                continue
            next_beat = time.monotonic() + interval_seconds()
            try:
                for task_id in lifecycle.heartbeat(running):
                    running[task_id].request_cancel()
            except Exception:
                # A database hiccup must not kill the thread; the next beat tries again.
                logger.exception("Heartbeat failed")
                connection.close()
            else:
                close_old_connections()  # honour CONN_MAX_AGE, drop a broken connection


heartbeat = Heartbeat()
os.register_at_fork(after_in_child=heartbeat._reset)
