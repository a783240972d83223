"""Real services for tests: the broker (bundled or the environment's Redis), a Celery worker and
celery beat.

The worker is a real `celery worker` subprocess (prefork pool, JSON messages, Django's fix-up)
connected to the test database, never eager mode.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import uuid4

from django.conf import settings

from tasks_app.devstack import processes

BASE_DIR = Path(settings.BASE_DIR)


def database_url(db: dict[str, Any]) -> str:
    """A DATABASE_URL for another process to reach the database Django is using now."""
    engine = db["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    if engine.endswith("postgresql"):
        user = quote(db.get("USER") or "")
        password = quote(db.get("PASSWORD") or "")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = db.get("HOST") or "localhost"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        return f"postgres://{auth}{host}{port}/{quote(db['NAME'])}"
    raise NotImplementedError(f"No URL form for database engine {engine}")


# Workers the tests start read the per-job concurrency limits again this often (5 s by
# default): a test that changes a limit waits this long, plus a second, for it to apply.
LIMITS_REFRESH_SECONDS = 1.0


def child_env(broker_url: str, **extra: str) -> dict[str, str]:
    """Environment for a worker/beat subprocess that shares this test session's services."""
    env = dict(os.environ)
    env.update(
        DEBUG="true",
        DATABASE_URL=database_url(settings.DATABASES["default"]),
        REDIS_URL=broker_url,
        PYTHONUNBUFFERED="1",
        TASKDECK_DEMO_JOBS="true",  # the suite drives the demo jobs
        TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE="true",  # the webhook receiver is on 127.0.0.1
        TASKDECK_ALERT_RETRY_BASE_SECONDS="0.5",  # retries within a test, not 10 s later
        TASKDECK_JOB_LIMITS_REFRESH_SECONDS=str(LIMITS_REFRESH_SECONDS),
    )
    env.update(extra)
    return env


class WorkerProcess:
    """A `celery worker` subprocess, its output kept in a log file for failure reports."""

    def __init__(
        self,
        broker_url: str,
        log_path: Path,
        *,
        name: str = "test-worker",
        concurrency: int = 2,
        queues: tuple[str, ...] = tuple(settings.TASKDECK_QUEUES),
        extra_args: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.broker_url = broker_url
        self.log_path = log_path
        self.hostname = f"{name}-{os.getpid()}@%h"
        self.args = [
            sys.executable, "-m", "celery", "-A", "dashboard", "worker",
            "-l", "INFO", "-n", self.hostname, "-Q", ",".join(queues),
            "--concurrency", str(concurrency), "--without-mingle", "--without-gossip",
            *extra_args,
        ]  # fmt: skip
        self.env = env or child_env(broker_url)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.process = processes.start(self.args, env=self.env, cwd=BASE_DIR, log=self.log_path)
        ready = processes.wait_ready(
            self.process, lambda: processes.log_contains(self.log_path, b" ready."), timeout
        )
        if ready == "ready":
            return
        if ready == "exited":
            raise RuntimeError(f"Celery worker exited early:\n{self.log_tail()}")
        self.stop()
        raise RuntimeError(f"Celery worker not ready in {timeout}s:\n{self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is None:
            return
        processes.stop_group(self.process, timeout)
        self.process = None

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP every process of the worker, SIGCONT afterwards: meanwhile it does nothing,
        not even its periodic checks (messages wait in the broker)."""
        if self.process is None:
            yield
            return
        processes.signal_group(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            processes.signal_group(self.process.pid, signal.SIGCONT)


# The session's worker, once a test has started it (tests/conftest.py).
SESSION_WORKERS: list[WorkerProcess] = []


class BeatProcess:
    """A `celery beat` subprocess with Taskdeck's scheduler (tasks_app.schedules.beat), on the
    test database and broker, its output kept in a log file.

    Several can run side by side: each gets its own `--schedule` file (unused by the database
    scheduler, but nothing is shared if a test picks another one) and no pidfile (beat writes
    none unless asked). `--max-interval 1`: beat looks at the schedule and its lock at least
    every second instead of every 5 s, so tests wait seconds, not tens of seconds, for an edit
    to apply or a standby to take over. Pass `env=child_env(broker_url, ...)` to change
    settings, e.g. TASKDECK_BEAT_LOCK_KEY so that beats of different tests never share a lock.
    """

    # Logged once the scheduler has set up and decided whether it leads.
    LEADING = "is the leader now"
    STANDING_BY = "standing by"

    def __init__(
        self,
        broker_url: str,
        log_path: Path,
        *,
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.broker_url = broker_url
        self.log_path = log_path
        self.args = [
            sys.executable, "-m", "celery", "-A", "dashboard", "beat", "-l", "INFO",
            "--max-interval", "1", "--schedule", str(log_path.with_suffix(".schedule")),
            *extra_args,
        ]  # fmt: skip
        self.env = env or child_env(broker_url)
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        """Start the process without waiting (to start several at the same moment)."""
        self.process = processes.start(self.args, env=self.env, cwd=BASE_DIR, log=self.log_path)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until beat has set up its schedule and either leads or stands by."""
        ready = "exited"
        if self.process is not None:
            ready = processes.wait_ready(
                self.process, lambda: self.is_leading() or self.is_standing_by(), timeout
            )
        if ready == "ready":
            return
        if ready == "exited":
            raise RuntimeError(f"celery beat exited early:\n{self.log_tail()}")
        self.stop()
        raise RuntimeError(f"celery beat not ready in {timeout}s:\n{self.log_tail()}")

    def start(self, timeout: float = 60.0) -> None:
        self.launch()
        self.wait_ready(timeout)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def is_leading(self) -> bool:
        """Whether this beat has led at some point (see the log for when)."""
        return self.LEADING in self.log_text()

    def is_standing_by(self) -> bool:
        return self.STANDING_BY in self.log_text()

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (beat writes its schedule and releases its lock), SIGKILL after `timeout`."""
        if self.process is None:
            return
        processes.stop_group(self.process, timeout)
        self.process = None

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, with no chance to release the lock."""
        if self.process is None:
            return
        processes.kill_group(self.process)
        self.process = None

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_text().splitlines()[-lines:])


def use_broker(url: str) -> None:
    """Point this process's Celery app at another broker, dropping pooled connections."""
    from kombu import pools

    from dashboard.celery import app

    pools.reset()  # kombu keeps producer pools in a process-wide registry
    app.conf.update(broker_url=url)
    app._after_fork()  # type: ignore[attr-defined]  # Celery's own reset of its connection and producer pools


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll until `predicate()` returns something truthy; return it or fail with the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


@contextmanager
def beats_sharing_a_lock(broker_url: str, log_dir: Path) -> Iterator[Callable[..., BeatProcess]]:
    """Make beats that share one lock, a key of their own: a lock left by another test's killed
    beat must not hold these back. `make(name, **env)` adds settings to a beat's environment.
    Every beat made is stopped afterwards."""
    key = f"taskdeck:beat-leader:test-{uuid4().hex}"
    made: list[BeatProcess] = []

    def make(name: str, **env: str) -> BeatProcess:
        beat_env = child_env(broker_url, TASKDECK_BEAT_LOCK_KEY=key, **env)
        beat = BeatProcess(broker_url, log_dir / f"beat-{name}.log", env=beat_env)
        made.append(beat)
        return beat

    try:
        yield make
    finally:
        for beat in made:
            beat.stop()
