"""Shared helpers of the benchmarks: environment, Django setup, worker subprocesses, output.

Nothing here imports from tests/: the worker handling follows tests/support/services.py.
"""

from __future__ import annotations

import os
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tasks_app.devstack import processes

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"


def prepare_env(*, debug_default: str) -> None:
    """Environment shared by this process and the workers it starts (they inherit it).

    DATABASE_URL is respected as is (unset: the project's default SQLite). REDIS_URL defaults to
    its own Redis database number, which the throughput benchmark flushes.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    if not os.environ.get("REDIS_URL", "").strip():
        os.environ["REDIS_URL"] = DEFAULT_REDIS_URL
    if not os.environ.get("DEBUG", "").strip():
        os.environ["DEBUG"] = debug_default
    if (
        os.environ["DEBUG"].lower() in {"0", "false", "no", "off"}
        and not os.environ.get("SECRET_KEY", "").strip()
    ):
        # Required by the settings when DEBUG is off; nothing signed here outlives the run.
        os.environ["SECRET_KEY"] = secrets.token_urlsafe(50)
    os.environ["PYTHONUNBUFFERED"] = "1"


def setup_django() -> None:
    import django

    if str(BASE_DIR) not in sys.path:
        sys.path.insert(0, str(BASE_DIR))
    django.setup()


def migrate() -> None:
    """`manage.py migrate`, in this process."""
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def database_label() -> str:
    """Which database is used, without credentials: `postgresql test@127.0.0.1:5432`."""
    from django.db import connection

    db = connection.settings_dict
    engine = str(db["ENGINE"]).rsplit(".", 1)[-1]
    if engine == "sqlite3":
        return f"sqlite3 {db['NAME']}"
    host = db.get("HOST") or "localhost"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"{engine} {db['NAME']}@{host}{port}"


def is_postgresql() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def redis_label(url: str) -> str:
    """The Redis URL without a password."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def emit(name: str, value: Any) -> None:
    """One `name: value` line of the benchmark's output."""
    if isinstance(value, float):
        value = f"{value:.2f}" if abs(value) >= 0.1 or value == 0 else f"{value:.3g}"
    print(f"{name}: {value}", flush=True)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


class Worker:
    """A `celery worker` subprocess writing its log to a file, which is read incrementally to
    see it become ready and to count the tasks it finished ("succeeded" lines, INFO level)."""

    SUCCEEDED = b" succeeded in "

    def __init__(self, args: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.args = args
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        self._log = processes.LogFollower(log_path)
        self.succeeded = 0

    def start(self, timeout: float = 60.0, poll: float = 0.01) -> float:
        """Start it and wait for its "ready." line; returns the time it was seen."""
        self.process = processes.start(
            self.args, env=self.env, cwd=BASE_DIR, log=self.log_path, append=False
        )
        ready = processes.wait_ready(self.process, self._read_ready, timeout, poll)
        if ready == "ready":
            return time.monotonic()
        if ready == "exited":
            raise RuntimeError(f"Celery worker exited early:\n{self.log_tail()}")
        self.stop()
        raise RuntimeError(f"Celery worker not ready in {timeout}s:\n{self.log_tail()}")

    def _read_ready(self) -> bool:
        """Count what it logged since the last read; whether that includes "ready."."""
        return any(b" ready." in line for line in self._read_new())

    def _read_new(self) -> list[bytes]:
        lines = self._log.new_lines()
        self.succeeded += sum(line.count(self.SUCCEEDED) for line in lines)
        return lines

    def wait_succeeded(self, count: int, timeout: float, poll: float = 0.01) -> float:
        """Wait until `count` tasks finished; returns the time the last one was seen."""
        deadline = time.monotonic() + timeout
        while True:
            self._read_new()
            now = time.monotonic()
            if self.succeeded >= count:
                return now
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"Celery worker exited:\n{self.log_tail()}")
            if now > deadline:
                raise RuntimeError(
                    f"Only {self.succeeded} of {count} tasks done after {timeout}s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(poll)

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None:
            return
        processes.stop_group(self.process, timeout)
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
