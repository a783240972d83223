"""`make run`'s process manager: the whole stack comes up, and Ctrl-C or SIGTERM stops every
process it started (bundled Redis, worker and its pool, beat, web server and its reloader)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.support.devstack import (
    BASE_DIR,
    free_port,
    http_status,
    kill_stack,
    stack_env,
    start_stack,
    wait_for,
)

pytestmark = pytest.mark.processes  # starts its own processes: not in make test-fast


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
    stack = start_stack(env, port, log)
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
        kill_stack(stack)
