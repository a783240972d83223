"""Helpers for the fault tests (tests/integration/faults/): killing parts of a worker's
process tree, finding which pool process runs a task, switching the broker, timing recoveries."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from django.conf import settings

from tests.support.services import WorkerProcess, use_broker, wait_for


def pool_processes(worker: WorkerProcess) -> list[psutil.Process]:
    """The worker's prefork pool processes (children of its main process)."""
    assert worker.process is not None
    return psutil.Process(worker.process.pid).children(recursive=True)


def kill_main_process(worker: WorkerProcess) -> list[psutil.Process]:
    """SIGKILL the worker's main process only (not its process group), as an OOM killer or a
    crash would; returns the pool processes it had, which the caller checks for orphans."""
    assert worker.process is not None
    children = pool_processes(worker)
    os.kill(worker.process.pid, signal.SIGKILL)
    worker.process.wait()
    return children


def surviving(processes: Iterable[psutil.Process], timeout: float) -> list[psutil.Process]:
    """The processes still running after waiting up to `timeout`. A zombie counts as dead: it
    runs nothing, and reaping an orphan is up to PID 1, not to us."""
    deadline = time.monotonic() + timeout
    alive = list(processes)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _is_running(p)]
        time.sleep(0.01)
    return [p for p in alive if _is_running(p)]


def _is_running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_group(worker: WorkerProcess) -> None:
    """Clean-up after a fault: SIGKILL whatever is left in the worker's process group (orphaned
    pool processes included, they keep the group id) and forget the process."""
    if worker.process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait()
    worker.process = None


def pool_pids_running(worker: WorkerProcess, task_ids: Iterable[str]) -> dict[str, int]:
    """Which pool process runs each task, as the worker reports it (`inspect active`)."""
    from dashboard.celery import app

    wanted = set(task_ids)
    host = worker.hostname.replace("%h", socket.gethostname())

    def answer() -> dict[str, int] | None:
        inspect = app.control.inspect(timeout=1.0, destination=[host], limit=1)
        replies = inspect.active() or {}
        found = {
            str(task["id"]): int(task["worker_pid"])
            for task in replies.get(host, [])
            if task.get("id") in wanted and task.get("worker_pid")
        }
        return found if set(found) == wanted else None

    found: dict[str, int] = wait_for(answer, timeout=15, interval=0.2)
    return found


def times_received(logs: Iterable[Path], task_id: str) -> int:
    """How many times any of these workers received the task's message (each delivery is a
    potential execution, refused or not)."""
    needle = f"[{task_id}] received".encode()
    return sum(path.read_bytes().count(needle) for path in logs if path.exists())


@contextlib.contextmanager
def broker_switched(url: str) -> Iterator[None]:
    """Point this test process (Celery app and settings) at another broker; put back the one
    it used before on the way out, whatever happened."""
    from dashboard.celery import app

    previous_app, previous_setting = app.conf.broker_url, settings.CELERY_BROKER_URL
    settings.CELERY_BROKER_URL = url
    use_broker(url)
    try:
        yield
    finally:
        settings.CELERY_BROKER_URL = previous_setting
        use_broker(previous_app)


@dataclass
class Timings:
    """Durations (seconds) per label, summarised as min/median/max for the closing note."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, label: str, seconds: float) -> None:
        self.samples.setdefault(label, []).append(seconds)

    def since(self, label: str, started: float) -> float:
        elapsed = time.monotonic() - started
        self.add(label, elapsed)
        return elapsed

    def summary(self) -> str:
        return "\n".join(
            f"{label}: n={len(values)} min={min(values):.2f}s "
            f"median={statistics.median(values):.2f}s max={max(values):.2f}s"
            for label, values in self.samples.items()
        )
