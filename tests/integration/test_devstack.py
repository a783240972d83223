"""`make run`'s process manager: the whole stack comes up, and Ctrl-C or SIGTERM stops every
process it started (bundled Redis, worker and its pool, beat, web server and its reloader)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from django.conf import settings

BASE_DIR = Path(settings.BASE_DIR)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stack_env(data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The defaults a developer gets: SQLite in the data folder and the bundled Redis.
    env.update(DEBUG="true", TASKDECK_DATA_DIR=str(data_dir), DATABASE_URL="", REDIS_URL="")
    return env


def http_status(url: str) -> int | None:
    request = urllib.request.Request(url, method="GET")  # noqa: S310 - a fixed local URL
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    pytest.fail(f"Timed out waiting for {what}. Stack output:\n{log.read_text()[-4000:]}")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stack_starts_everything_and_stops_every_process(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    data_dir = tmp_path / "data"
    env = stack_env(data_dir)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert migrate.returncode == 0, migrate.stderr
    port = free_port()
    log = tmp_path / "stack.log"
    with log.open("wb") as out:
        stack = subprocess.Popen(
            [sys.executable, "manage.py", "devstack", "--port", str(port)],
            cwd=BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/") == 200, 60, "web", log)
        wait_for(lambda: b" ready." in log.read_bytes(), 60, "the worker", log)
        wait_for(lambda: b"beat: Starting" in log.read_bytes(), 60, "beat", log)
        banner = f"Taskdeck is running: open http://127.0.0.1:{port}/".encode()
        wait_for(lambda: banner in log.read_bytes(), 10, "the ready message", log)
        descendants = psutil.Process(stack.pid).children(recursive=True)
        commands = [" ".join(p.cmdline()) for p in descendants]

        assert any("redis-server" in c and str(data_dir) in c for c in commands), commands
        assert sum("celery" in c and " worker " in c for c in commands) >= 2, commands  # + pool
        assert any("celery" in c and " beat" in c for c in commands), commands
        assert any("runserver" in c for c in commands), commands

        stack.send_signal(stop_signal)
        exit_code = stack.wait(timeout=60)
        _, alive = psutil.wait_procs(descendants, timeout=10)

        assert exit_code == 0, log.read_text()[-4000:]
        assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == []
        assert b"stopped." in log.read_bytes()
    finally:  # on a failure, leave nothing running
        if stack.poll() is None:
            for child in psutil.Process(stack.pid).children(recursive=True):
                child.kill()
            stack.kill()
