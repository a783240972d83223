"""Starting and stopping child processes: the dev stack's supervisor, the bundled Redis, the
test suite's workers and beats, and the benchmarks' workers and web server all use these.

A child normally leads its own session (process group), so a terminal's Ctrl-C reaches only
its parent, which stops it in its own order, and a stop signals the whole group: grandchildren
(a Celery worker's pool processes, runserver's reloaded server) go too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Literal

PR_SET_PDEATHSIG = 1
LOOPBACK = "127.0.0.1"

Outcome = Literal["ready", "exited", "timeout"]


def _die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGTERM it when its parent dies, even if
    the parent itself is killed with SIGKILL."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent's signal handlers still stop it
        pass


def start(
    args: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    log: Path | None = None,
    append: bool = True,
    own_group: bool = True,
    die_with_parent: bool = False,
) -> subprocess.Popen[bytes]:
    """Start `args`; stdout and stderr go to `log` (appended to, or truncated when `append` is
    false) or, without one, to ours. `own_group`: in a session of its own (see the module).
    `die_with_parent` uses a pre-exec hook: only for a parent that runs no threads."""
    if log is None:
        return _popen(args, env, cwd, None, own_group, die_with_parent)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab" if append else "wb") as out:  # the child keeps its own descriptor
        return _popen(args, env, cwd, out.fileno(), own_group, die_with_parent)


def _popen(
    args: Sequence[str],
    env: Mapping[str, str] | None,
    cwd: str | Path | None,
    out: int | None,
    own_group: bool,
    die_with_parent: bool,
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(args),
        env=env,
        cwd=cwd,
        stdout=out,
        stderr=None if out is None else subprocess.STDOUT,
        start_new_session=own_group,
        preexec_fn=_die_with_parent if die_with_parent else None,
    )


def stop_group(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """SIGTERM a child that leads its own process group, wait up to `timeout`, then SIGKILL
    the whole group: whatever the leader did, nothing of it may outlive us. Returns whether it
    stopped on the SIGTERM."""
    pgid = process.pid
    signal_group(pgid, signal.SIGTERM)
    try:
        process.wait(timeout)
        graceful = True
    except subprocess.TimeoutExpired:
        graceful = False
    signal_group(pgid, signal.SIGKILL)
    process.wait()
    return graceful


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole process group at once (a crash: no chance to clean up)."""
    signal_group(process.pid, signal.SIGKILL)
    process.wait()


def signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a process group; one that is already gone is no error."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def wait_ready(
    process: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    timeout: float,
    interval: float = 0.1,
) -> Outcome:
    """Poll until `ready()`: "ready", "exited" when the child died first (a dead child is never
    ready), or "timeout". The caller decides what each means (and stops a child that timed out)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return "exited"
        if ready():
            return "ready"
        time.sleep(interval)
    return "timeout"


def log_contains(path: Path, text: bytes) -> bool:
    """Whether the log file holds `text` yet (a "ready." line, say)."""
    return path.exists() and text in path.read_bytes()


def port_answers(port: int, host: str = LOOPBACK, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on the port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port(host: str = LOOPBACK) -> int:
    """A port nothing listens on now (the OS's pick), for a server started next."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class LogFollower:
    """Reads a child's log file as it grows, in whole lines (a partial last line waits for the
    next read), so each line is looked at once however often it is polled."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._tail = b""

    def new_lines(self) -> list[bytes]:
        with self.path.open("rb") as log:
            log.seek(self._offset)
            chunk = log.read()
        self._offset += len(chunk)
        complete, _, self._tail = (self._tail + chunk).rpartition(b"\n")
        return complete.splitlines()
