"""Start a set of child processes, watch them, and stop every one of them on a signal.

Each child runs in its own session (process group), so a terminal's Ctrl-C reaches only the
supervisor, which then stops the children in order (web and beat, then the worker, then the
broker) and signals whole process groups, so grandchildren (runserver's reloaded server, the
worker's pool processes) go too. PR_SET_PDEATHSIG makes a child die with the supervisor even if
the supervisor itself is killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: ask Linux to SIGTERM it when the supervisor dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the signal handlers still stop children
        pass


@dataclass
class Child:
    name: str
    args: Sequence[str]
    stop_timeout: float = 10.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self, env: dict[str, str], cwd: str) -> None:
        self.process = subprocess.Popen(
            list(self.args),
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # no threads are running yet
        )

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self) -> None:
        """SIGTERM the child's process group, then SIGKILL what is left after the timeout."""
        if self.process is None:
            return
        if not stop_group(self.process, self.stop_timeout):
            print(f"[taskdeck] {self.name} did not stop in {self.stop_timeout:.0f}s; killed it.")


def stop_group(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """SIGTERM a child that leads its own process group, wait up to `timeout`, then SIGKILL
    the whole group: whatever the leader did, nothing of it may outlive us. Returns whether it
    stopped on the SIGTERM."""
    pgid = process.pid
    _signal_group(pgid, signal.SIGTERM)
    try:
        process.wait(timeout)
        graceful = True
    except subprocess.TimeoutExpired:
        graceful = False
    _signal_group(pgid, signal.SIGKILL)
    process.wait()
    return graceful


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


class Stop(Exception):
    """Raised from the signal handler to leave the watch loop."""


@dataclass
class Supervisor:
    """Runs `stages` of children; stops them in reverse stage order."""

    stages: list[list[Child]]
    env: dict[str, str]
    cwd: str
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    # Printed once `ready` says the stack answers, so it is the last thing on the screen
    # rather than lost among the children's start-up logs.
    ready: Callable[[], bool] = lambda: True
    ready_message: str = ""

    def run(self) -> int:
        def handle(signum: int, _frame: FrameType | None) -> None:
            raise Stop(signal.Signals(signum).name)

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        status = 0
        try:
            for stage in self.stages:
                for child in stage:
                    child.start(self.env, self.cwd)
            status = self._watch()
        except Stop as stop:
            print(f"\n[taskdeck] {stop.args[0]} received; stopping everything.", flush=True)
        finally:
            # Ignore further Ctrl-C while stopping, so nothing is left half-stopped.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            self.stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return status

    def _watch(self) -> int:
        announced = False
        while True:
            if not announced and self.ready():
                announced = True
                if self.ready_message:
                    print(self.ready_message, flush=True)
            for stage in self.stages:
                for child in stage:
                    code = child.exit_code()
                    if code is not None:
                        print(
                            f"[taskdeck] {child.name} exited with code {code}; stopping the rest.",
                            file=sys.stderr,
                            flush=True,
                        )
                        return code or 1
            time.sleep(0.5)

    def stop_all(self) -> None:
        for stage in reversed(self.stages):
            for child in stage:
                child.stop()
        for callback in self.on_stop:
            callback()
        print("[taskdeck] stopped.", flush=True)
