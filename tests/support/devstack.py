"""Running `manage.py devstack` (what `make run` runs) for real in a test: its own data folder
(SQLite and the bundled Redis in it, whatever DATABASE_URL and REDIS_URL the suite runs with, so
it never touches the suite's database or broker), a free port, its output in a log file."""

from __future__ import annotations

import os
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

from tasks_app.devstack import processes
from tasks_app.devstack.processes import free_port as free_port  # the tests import it here

BASE_DIR = Path(settings.BASE_DIR)


def stack_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # The defaults a developer gets: SQLite in the data folder and the bundled Redis.
    env.update(DEBUG="true", TASKDECK_DATA_DIR=str(data_dir), DATABASE_URL="", REDIS_URL="")
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    """Run a manage.py command against the stack's database; its stdout."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def start_stack(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """In the test's process group, as from a terminal: a Ctrl-C of the test run stops it too."""
    args = [sys.executable, "manage.py", "devstack", "--port", str(port)]
    return processes.start(args, env=env, cwd=BASE_DIR, log=log, append=False, own_group=False)


def kill_stack(stack: subprocess.Popen[bytes]) -> None:
    """After a failure: leave nothing running."""
    if stack.poll() is None:
        for child in psutil.Process(stack.pid).children(recursive=True):
            child.kill()
        stack.kill()
        stack.wait()


def http_status(url: str, timeout: float = 2) -> int | None:
    """The status of a GET, None when nothing answers within `timeout`."""
    request = urllib.request.Request(url, method="GET")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - local URL
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def answers(url: str, within: float = 15) -> bool:
    """Whether the web server answers 200 within `within` seconds. Not a single try: runserver's
    autoreloader restarts its server for a moment whenever a source file changes."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if http_status(url) == 200:
            return True
        time.sleep(0.25)
    return False


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    pytest.fail(f"Timed out waiting for {what}. Stack output:\n{stack_output(log)}")


def stack_output(log: Path, size: int = 8000) -> str:
    """The end of the stack's output without the web server's request lines (the tests' own
    polling would otherwise fill it), so a failure shows what the worker, beat and reaper did."""
    lines = [line for line in log.read_text().splitlines() if '"GET /' not in line]
    return "\n".join(lines)[-size:]


def children(stack: subprocess.Popen[bytes]) -> dict[int, str]:
    """The stack's direct children (one per supervised process): pid -> command line."""
    found = {}
    for process in psutil.Process(stack.pid).children():
        try:
            found[process.pid] = " ".join(process.cmdline())
        except psutil.NoSuchProcess:  # exited meanwhile (a crash-looping worker)
            continue
    return found


def worker_main_pids(stack: subprocess.Popen[bytes]) -> list[int]:
    """The stack's Celery worker main processes (its direct children; pool processes are theirs)."""
    return [
        pid
        for pid, command in children(stack).items()
        if "celery" in command and " worker " in command
    ]
