"""The processes `python -m bench.load` starts: gunicorn and the Celery workers."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from pathlib import Path

from tasks_app.devstack import processes

from .common import BASE_DIR
from .load_config import HOST, HTTP_TIMEOUT, LIST_URLS, QUEUE, WEB_PROBLEM, WORKER_PROBLEM


class WebServer:
    """gunicorn on a free loopback port, logging to a file that is scanned for errors."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.port = processes.free_port(HOST)
        args = [
            sys.executable, "-m", "gunicorn", "dashboard.wsgi", "-b", f"{HOST}:{self.port}",
            "-k", "gthread", "-w", "2", "--threads", "8", "--log-level", "warning",
        ]  # fmt: skip
        self.process = processes.start(
            args, env=dict(os.environ), cwd=BASE_DIR, log=self.log_path, append=False
        )
        listening = processes.wait_ready(
            self.process, lambda: processes.port_answers(self.port, HOST), timeout
        )
        if listening == "ready":
            return
        if listening == "exited":
            raise RuntimeError(f"gunicorn exited:\n{self.log_path.read_text()}")
        raise RuntimeError(f"gunicorn did not listen in {timeout}s:\n{self.log_path.read_text()}")

    def warm_up(self, cookie: str) -> None:
        """Load every page and region a few times (Django compiles templates and URL patterns
        lazily, in each gunicorn worker), and check that the session is accepted: the bench
        fails here, not with 20 x N errors, when it is not."""
        paths = [("/", None), ("/", "active-runs"), ("/runs/", None)]
        paths += [(path, target) for path in LIST_URLS for target in (None, "rows")]
        conn = http.client.HTTPConnection(HOST, self.port, timeout=HTTP_TIMEOUT)
        try:
            for _ in range(4):
                for path, target in paths:
                    headers = {"Cookie": cookie}
                    if target:
                        headers |= {"HX-Request": "true", "HX-Target": target}
                    conn.request("GET", path, headers=headers)
                    response = conn.getresponse()
                    response.read()
                    if response.status != 200:
                        raise RuntimeError(f"warm-up GET {path}: HTTP {response.status}")
                    conn.close()  # a new connection each time, to reach both workers
        finally:
            conn.close()

    def stop(self) -> None:
        if self.process is not None:
            processes.stop_group(self.process, 20)
            self.process = None

    def problems(self) -> list[str]:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return [line for line in text.splitlines() if WEB_PROBLEM.search(line)]


class CeleryWorker:
    """A `celery worker` subprocess whose log is read line by line: "ready.", each "succeeded",
    and any problem line (a failed run logs "raised unexpected" at ERROR)."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.args = [
            sys.executable, "-m", "celery", "-A", "dashboard", "worker", "-l", "INFO",
            "-n", f"{name}@%h", "-Q", QUEUE, "--concurrency", "2", "-P", "prefork",
            "--without-mingle", "--without-gossip", "--include", "bench.jobs",
        ]  # fmt: skip
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.ready = False
        self.succeeded = 0
        self.problems: list[str] = []
        self._log = processes.LogFollower(log_path)

    def launch(self) -> None:
        """Start it without waiting, so that both workers boot at the same time."""
        self.process = processes.start(
            self.args, env=dict(os.environ), cwd=BASE_DIR, log=self.log_path, append=False
        )

    def read(self) -> None:
        for line in self._log.new_lines():
            if b" succeeded in " in line:
                self.succeeded += 1
            elif b" ready." in line:
                self.ready = True
            elif WORKER_PROBLEM.search(line):
                self.problems.append(line.decode(errors="replace"))

    def check(self) -> None:
        if self.problems:
            raise RuntimeError(f"{self.log_path.name}: {self.problems[0]}\n{self.log_tail()}")
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"{self.log_path.name}: the worker exited\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None:
            processes.stop_group(self.process, 30)
            self.process = None

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])
