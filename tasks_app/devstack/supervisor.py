"""Start a set of child processes, keep them running, and stop every one of them on a signal.

Each child runs in its own session (process group), so a terminal's Ctrl-C reaches only the
supervisor, which then stops the children in order (web and beat, then the worker, then the
broker) and signals whole process groups, so grandchildren (runserver's reloaded server, the
worker's pool processes) go too. PR_SET_PDEATHSIG makes a child die with the supervisor even if
the supervisor itself is killed with SIGKILL.

A child that exits (the OOM killer took the worker, beat crashed) is restarted as
`restart_policy` says, after whatever it left in its process group is killed; one that crash-loops
stays down with a message, and the rest keep running. Only an `essential` child's exit (the web
server: without it the operator sees nothing) stops the stack.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

from . import processes
from .processes import stop_group
from .restart_policy import RestartPolicy


@dataclass
class Child:
    name: str
    args: Sequence[str]
    stop_timeout: float = 10.0
    essential: bool = False  # its exit stops the whole stack instead of a restart
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    started_at: float = field(default=0.0, init=False)
    quick_exits: int = field(default=0, init=False)  # exits soon after a start, in a row
    restart_at: float | None = field(default=None, init=False)
    given_up: bool = field(default=False, init=False)

    def start(self, env: dict[str, str], cwd: str) -> None:
        # die_with_parent: the supervisor runs no threads.
        self.adopt(processes.start(self.args, env=env, cwd=cwd, die_with_parent=True))

    def adopt(self, process: subprocess.Popen[bytes]) -> None:
        """Supervise a process started elsewhere (the bundled Redis, started and awaited before
        anything that needs it); a restart runs `args`."""
        self.process = process
        self.started_at = time.monotonic()

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def kill_leftovers(self) -> None:
        """After the leader died: kill what it left in its process group (a SIGKILLed worker's
        pool processes), as systemd does, so nothing of the old one runs next to its successor."""
        if self.process is not None:
            processes.signal_group(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM the child's process group, then SIGKILL what is left after the timeout."""
        if self.process is None:
            return
        if not stop_group(self.process, self.stop_timeout):
            print(f"[taskdeck] {self.name} did not stop in {self.stop_timeout:.0f}s; killed it.")


class Stop(Exception):
    """Raised from the signal handler to leave the watch loop."""


@dataclass
class Supervisor:
    """Runs `stages` of children, restarts the ones that exit as `policy` says, and stops them
    in reverse stage order."""

    stages: list[list[Child]]
    env: dict[str, str]
    cwd: str
    on_stop: list[Callable[[], None]] = field(default_factory=list)
    # Printed once `ready` says the stack answers, so it is the last thing on the screen
    # rather than lost among the children's start-up logs.
    ready: Callable[[], bool] = lambda: True
    ready_message: str = ""
    policy: RestartPolicy = field(default_factory=RestartPolicy)

    def run(self) -> int:
        def handle(signum: int, _frame: FrameType | None) -> None:
            raise Stop(signal.Signals(signum).name)

        previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        status = 0
        try:
            for child in self._children():
                if child.process is None:
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
            for child in self._children():
                if child.restart_at is not None:
                    if time.monotonic() >= child.restart_at:
                        child.restart_at = None
                        _say(f"restarting {child.name}.")
                        child.start(self.env, self.cwd)
                    continue
                code = None if child.given_up else child.exit_code()
                if code is None:
                    continue
                child.kill_leftovers()
                if child.essential:
                    _say(f"{child.name} {_exited(code)}; stopping the rest.")
                    return 128 - code if code < 0 else code or 1  # a shell's status
                self._after_exit(child, code)
            time.sleep(0.25)

    def _after_exit(self, child: Child, code: int) -> None:
        uptime = time.monotonic() - child.started_at
        verdict = self.policy.after_exit(child.quick_exits, uptime)
        child.quick_exits = verdict.quick_exits
        exited = f"{child.name} {_exited(code)} after {uptime:.1f} s"
        if verdict.restart_in is None:
            child.given_up = True
            _say(
                f"{exited}, its exit number {verdict.quick_exits} in a row within "
                f"{self.policy.crash_window:g} s of starting: {child.name} is crash-looping "
                "and stays down; everything else keeps running. See its output above, fix the "
                "cause, then restart `make run`."
            )
            return
        child.restart_at = time.monotonic() + verdict.restart_in
        _say(f"{exited}; restarting it in {verdict.restart_in:g} s.")

    def _children(self) -> list[Child]:
        return [child for stage in self.stages for child in stage]

    def stop_all(self) -> None:
        for stage in reversed(self.stages):
            for child in stage:
                child.stop()
        for callback in self.on_stop:
            callback()
        print("[taskdeck] stopped.", flush=True)


def _exited(code: int) -> str:
    """How a child ended, with its exit code (Popen's negative code for a signal)."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name} (exit code {code})"
        except ValueError:
            pass
    return f"exited with code {code}"


def _say(message: str) -> None:
    print(f"[taskdeck] {message}", file=sys.stderr, flush=True)
