"""Live pages under load: 20 operators polling while 10,000 runs flow through two workers.

    python -m bench.load [--runs 10000] [--operators 20] [--repeats 1] [--timeout S]

Each repeat runs the same flow twice on the same Redis, database and web server: once with
nobody watching, once with the operators polling (the order alternates between repeats). A flow:
N runs of `bench.steps` (5 progress steps of 2 ms) are published to the queue `bench.load` while
no worker runs; then two `celery -A dashboard worker` processes (prefork, 2 processes each) are
launched at the same moment. Timing starts when both have logged "ready." and counts only the
runs that finished after it: throughput = (N - runs done before that moment) / (time from it to
the N-th "succeeded" line over both logs). After each flow the database must hold N bench.steps
runs and N TaskResult rows, all SUCCESS, none active, and the queue must be empty.

The web server is gunicorn (gthread, 2 workers x 8 threads, DEBUG off, collected static files)
serving the real pages on 127.0.0.1. Each operator is a thread with its own signed-in session,
doing what a browser with three tabs does: the overview, the runs list of `bench.steps` (half of
the operators with the "Started"/"Running" state boxes ticked) and one run's page. Each tab
polls its live region as htmx does (overview `active-runs` and the list's `rows` every 2 s, the
run's `live` every 1 s, each timer restarting when the answer arrives) while its last answer
still carries the poll trigger; a tab whose polling stopped is reloaded (a full page). The run to
watch is a link of an active row in the list's latest HTML; when its run ends, the operator opens
another. Operators start once the runs are queued and stop when the flow ends.

Errors: every non-2xx answer and every failed request, every problem line in the web server's
log (tracebacks, ERROR, Django's 4xx/5xx warnings) and in the workers' logs. Any of them, or a
wrong database state, exits non-zero before the last line. It prints each poll and page kind's
count and p50/p95/max, the poll p50/p95/max over all polls, the error counts, both throughputs
and, last, `ratio: R` = throughput watched / throughput unwatched (best of the repeats each).

The bench's rows, sessions and user are deleted before and after; the Redis database of
REDIS_URL (default redis://127.0.0.1:6379/14) is flushed before and after. PostgreSQL
(DATABASE_URL) is what it is meant for; SQLite works but serialises every write.
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from .common import (
    BASE_DIR,
    database_label,
    emit,
    load_average,
    migrate,
    prepare_env,
    redis_label,
    setup_django,
)
from .throughput import OWN_KEY_PREFIXES

HOST = "127.0.0.1"  # loopback only: nothing here listens on, or talks to, another address
QUEUE = "bench.load"
WORKERS = 2
USERNAME = "bench-operator"
HTTP_TIMEOUT = 30.0
READY_TIMEOUT = 90.0  # two workers booting at once on 2 cores, beside a busy web server
# tab -> (poll kind, the region's id as htmx sends it in HX-Target, the page's interval in s)
TABS: dict[str, tuple[str, str, float]] = {
    "overview": ("overview_active", "active-runs", 2.0),
    "runs": ("runs_rows", "rows", 2.0),
    "run": ("run_live", "live", 1.0),
}
LIST_URLS = ("/runs/?job=bench.steps", "/runs/?job=bench.steps&state=STARTED&state=PROGRESS")
# A region keeps polling while it carries its trigger (the templates drop it when nothing is
# active); a link of an active row of the runs list is a run to watch.
POLLING = b'hx-trigger="every '
ACTIVE_ROW = re.compile(rb'<tr class="active">.*?<a href="(/runs/[^"/?#]+/)"', re.DOTALL)
WEB_PROBLEM = re.compile(
    r"Traceback|\bERROR\b|\bCRITICAL\b|WORKER TIMEOUT|Internal Server Error"
    r"|^(Not Found|Forbidden|Bad Request|Unauthorized|Method Not Allowed|Service Unavailable):",
    re.MULTILINE,
)
WORKER_PROBLEM = re.compile(rb"ERROR/|CRITICAL/|Traceback|raised unexpected")


class Interrupted(BaseException):
    """SIGTERM/SIGHUP, like Ctrl-C: leave through the `finally` blocks, which stop what was
    started (a BaseException, so that no `except Exception` on the way swallows it)."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """While stopping what it started, a Ctrl-C must not cut the stop short (leaving a worker
    running): signals are held until the block is done, then acted on. Every stop is bounded."""
    held: list[int] = []

    def hold(signum: int, frame: FrameType | None) -> None:
        held.append(signum)

    previous = {sig: signal.signal(sig, hold) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if held:
        signal.raise_signal(held[0])


# --- figures ---------------------------------------------------------------------------------


@dataclass
class Samples:
    """Latencies by kind and every failure, shared by the operator threads."""

    latencies: dict[str, list[float]] = field(default_factory=dict)
    http_errors: list[str] = field(default_factory=list)  # answers other than 2xx
    request_errors: list[str] = field(default_factory=list)  # no answer at all
    reconnects: int = 0  # keep-alive connections the server had closed: reopened, as browsers do
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float) -> None:
        with self.lock:
            self.latencies.setdefault(kind, []).append(seconds)

    def http_error(self, message: str) -> None:
        with self.lock:
            self.http_errors.append(message)

    def request_error(self, message: str) -> None:
        with self.lock:
            self.request_errors.append(message)

    def reconnected(self) -> None:
        with self.lock:
            self.reconnects += 1

    def polls(self) -> list[float]:
        return [s for kind, values in self.latencies.items() if kind in POLL_KINDS for s in values]


POLL_KINDS = frozenset(kind for kind, _, _ in TABS.values())


def percentile(values: list[float], p: float) -> float:
    """Nearest rank, as bench.history reports it."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), math.ceil(len(ordered) * p / 100)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class FlowResult:
    label: str
    runs: int
    done_before_ready: int  # finished by the first worker before the second was ready: not timed
    seconds: float  # both ready -> the last run done
    publish_seconds: float

    @property
    def rate(self) -> float:
        return (self.runs - self.done_before_ready) / max(self.seconds, 1e-9)


# --- the processes it starts -----------------------------------------------------------------


def stop_process(process: subprocess.Popen[bytes], timeout: float) -> None:
    from tasks_app.devstack.supervisor import stop_group

    stop_group(process, timeout)


class WebServer:
    """gunicorn on a free loopback port, logging to a file that is scanned for errors."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        with socket.socket() as sock:
            sock.bind((HOST, 0))
            self.port = int(sock.getsockname()[1])
        args = [
            sys.executable, "-m", "gunicorn", "dashboard.wsgi", "-b", f"{HOST}:{self.port}",
            "-k", "gthread", "-w", "2", "--threads", "8", "--log-level", "warning",
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                args, cwd=BASE_DIR, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{self.log_path.read_text()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
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
            stop_process(self.process, 20)
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
        self._offset = 0
        self._tail = b""

    def launch(self) -> None:
        """Start it without waiting, so that both workers boot at the same time."""
        self.log_path.write_bytes(b"")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.args, cwd=BASE_DIR, env=dict(os.environ), stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def read(self) -> None:
        with self.log_path.open("rb") as log:
            log.seek(self._offset)
            chunk = log.read()
        self._offset += len(chunk)
        complete, _, self._tail = (self._tail + chunk).rpartition(b"\n")  # whole lines only
        for line in complete.splitlines():
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
            stop_process(self.process, 30)
            self.process = None

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


# --- the operators ---------------------------------------------------------------------------


class Operator(threading.Thread):
    """One person with the overview, the runs list and one run open, polling as htmx does."""

    def __init__(
        self, port: int, cookie: str, list_url: str, samples: Samples, stop: threading.Event,
        seed: int,
    ) -> None:  # fmt: skip
        super().__init__(daemon=True, name=f"operator-{seed}")
        self.port, self.cookie, self.list_url = port, cookie, list_url
        self.samples, self.stop_event = samples, stop
        self.random = random.Random(seed)  # noqa: S311 - spreads the polls, no secrets
        self.conns: dict[str, http.client.HTTPConnection] = {}
        self.candidates: list[str] = []  # links of the active rows in the list's latest HTML

    def get(self, tab: str, kind: str, path: str, target: str | None) -> bytes | None:
        """One GET on the tab's keep-alive connection; its body, or None when it failed."""
        headers = {"Cookie": self.cookie, "Connection": "keep-alive"}
        if target:
            headers |= {"HX-Request": "true", "HX-Target": target}
        started = time.perf_counter()
        for attempt in (1, 2):
            conn = self.conns.get(tab)
            if conn is None:
                conn = self.conns[tab] = http.client.HTTPConnection(
                    HOST, self.port, timeout=HTTP_TIMEOUT
                )
            reused = conn.sock is not None
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                del self.conns[tab]
                stale = isinstance(
                    error, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
                )
                if attempt == 1 and reused and stale:
                    self.samples.reconnected()  # gunicorn closed an idle keep-alive connection
                    continue
                self.samples.request_error(f"{kind} {path}: {error!r}")
                return None
            self.samples.add(kind, time.perf_counter() - started)
            if not 200 <= response.status < 300:
                self.samples.http_error(f"{kind} {path}: HTTP {response.status}")
                return None
            return body
        return None

    def visit(self, tab: str, polling: bool, watching: str | None) -> tuple[bool, str | None]:
        """What the tab does when its timer fires; whether it polls on, and the run it shows."""
        kind, target, _ = TABS[tab]
        if tab == "overview":
            body = (
                self.get(tab, kind, "/", target)
                if polling
                else self.get(tab, "page_overview", "/", None)
            )
        elif tab == "runs":
            if polling:
                body = self.get(tab, kind, self.list_url, target)
            else:
                body = self.get(tab, "page_runs", self.list_url, None)
            if body is not None:
                self.candidates = [link.decode() for link in ACTIVE_ROW.findall(body)]
        elif polling and watching:
            body = self.get(tab, kind, watching, target)
        else:
            # Its run ended (or none was open yet): open another one the list shows as active.
            choices = [link for link in self.candidates if link != watching]
            if not choices:
                return False, watching
            watching = self.random.choice(choices)
            body = self.get(tab, "page_run", watching, None)
        return body is not None and POLLING in body, watching

    def run(self) -> None:
        polling = dict.fromkeys(TABS, False)  # the first visit of each tab opens its page
        watching: str | None = None
        now = time.monotonic()
        # The runs list first, so that the run tab has something to open.
        due = {tab: now + (0.0 if tab == "runs" else 0.5) + self.random.random() for tab in TABS}
        try:
            while not self.stop_event.is_set():
                tab = min(due, key=due.__getitem__)
                wait = due[tab] - time.monotonic()
                if wait > 0 and self.stop_event.wait(wait):
                    break
                polling[tab], watching = self.visit(tab, polling[tab], watching)
                # htmx's `every Ns` timer restarts once the swapped-in answer is in place.
                due[tab] = time.monotonic() + TABS[tab][2]
        finally:
            for conn in self.conns.values():
                conn.close()


class Operators:
    """The operator threads of one flow; stopped (and joined, bounded) on leaving."""

    def __init__(self, port: int, cookies: list[str], samples: Samples) -> None:
        self.stop = threading.Event()
        self.threads = [
            Operator(port, cookie, LIST_URLS[i % len(LIST_URLS)], samples, self.stop, seed=i)
            for i, cookie in enumerate(cookies)
        ]
        self.samples = samples

    def __enter__(self) -> Operators:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with signals_deferred():
            self.stop_all()

    def stop_all(self) -> None:
        self.stop.set()
        deadline = time.monotonic() + 2 * HTTP_TIMEOUT + 5
        for thread in self.threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                self.samples.request_error(f"{thread.name} did not stop")


# --- database and Redis ----------------------------------------------------------------------


def delete_rows() -> None:
    from django_celery_results.models import TaskResult

    from tasks_app.models import Run

    from .jobs import STEPS_JOB

    TaskResult.objects.filter(task_name=STEPS_JOB).delete()
    Run.objects.filter(job_name=STEPS_JOB).delete()


def check_rows(n: int, label: str) -> None:
    """Every run of the flow, and its TaskResult, in SUCCESS; nothing left active."""
    from django.db.models import Count
    from django_celery_results.models import TaskResult

    from tasks_app.models import ACTIVE_STATES, Run, RunState

    from .jobs import STEPS_JOB

    runs = Run.objects.filter(job_name=STEPS_JOB)
    states = dict(runs.order_by().values("state").annotate(n=Count("id")).values_list("state", "n"))
    results = TaskResult.objects.filter(task_name=STEPS_JOB)
    statuses = dict(
        results.order_by().values("status").annotate(n=Count("id")).values_list("status", "n")
    )
    paired = results.filter(
        status="SUCCESS", task_id__in=runs.filter(state=RunState.SUCCESS).values("task_id")
    ).count()
    active = sum(count for state, count in states.items() if state in ACTIVE_STATES)
    if states != {RunState.SUCCESS.value: n} or statuses != {"SUCCESS": n} or paired != n:
        raise RuntimeError(
            f"{label}: expected {n} runs and {n} TaskResult rows, all SUCCESS; found runs "
            f"{states} ({active} still active), results {statuses}, {paired} SUCCESS on both"
        )


def flush_redis(client: Any, url: str, force: bool) -> None:
    """FLUSHDB of REDIS_URL's database, refused if it holds keys that are not the bench's."""
    foreign = [key for key in client.scan_iter(count=1000) if not key.startswith(OWN_KEY_PREFIXES)]
    if foreign and not force:
        raise SystemExit(
            f"Refusing to FLUSHDB {redis_label(url)}: it holds other keys (e.g. {foreign[0]!r}). "
            "Give the bench a Redis database of its own or pass --force-flush."
        )
    client.flushdb()


def make_sessions(count: int) -> tuple[list[str], list[str], bool]:
    """Signed-in sessions of the bench's staff user, as the login page makes them: cookies,
    session keys, and whether the user was created here (and so is deleted afterwards)."""
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User

    user, created = User.objects.get_or_create(
        username=USERNAME, defaults={"is_staff": True, "is_superuser": True}
    )
    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    cookies, keys = [], []
    for _ in range(count):
        store = store_class()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        keys.append(str(store.session_key))
        cookies.append(f"{settings.SESSION_COOKIE_NAME}={store.session_key}")
    return cookies, keys, created


def delete_sessions(keys: list[str], user_created: bool) -> None:
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth.models import User

    store_class = import_module(settings.SESSION_ENGINE).SessionStore
    for key in keys:
        store_class(key).delete()
    if user_created:
        User.objects.filter(username=USERNAME).delete()


# --- one flow --------------------------------------------------------------------------------


@dataclass
class Bench:
    n: int
    log_dir: Path
    timeout: float
    redis: Any
    port: int
    cookies: list[str]
    samples: Samples

    def flow(self, label: str, watched: bool) -> FlowResult:
        """Queue n runs, then let two workers run them, watched or not; see the docstring."""
        from django.db import connection

        from dashboard.celery import app

        from .jobs import STEPS_JOB

        delete_rows()
        self.redis.delete(QUEUE)
        task = app.tasks[STEPS_JOB]
        started = time.perf_counter()
        for _ in range(self.n):
            task.apply_async(queue=QUEUE)
        publish_seconds = time.perf_counter() - started
        queued = int(self.redis.llen(QUEUE))
        if queued != self.n:
            raise RuntimeError(f"{label}: {queued} messages queued, not {self.n}")
        connection.close()  # not held open while the workers run

        workers = [
            CeleryWorker(
                f"bench-load-{label}-{i}-{os.getpid()}", self.log_dir / f"worker-{label}-{i}.log"
            )
            for i in range(WORKERS)
        ]
        operators = Operators(self.port, self.cookies if watched else [], self.samples)
        try:
            with operators:
                for worker in workers:
                    worker.launch()
                ready = self.wait(
                    workers, lambda: all(w.ready for w in workers), READY_TIMEOUT, "both ready"
                )
                done_before_ready = sum(w.succeeded for w in workers)
                finished = self.wait(
                    workers,
                    lambda: sum(w.succeeded for w in workers) >= self.n,
                    self.timeout,
                    f"{self.n} runs done",
                )
        finally:
            with signals_deferred():
                for worker in workers:
                    worker.stop()
        for worker in workers:
            worker.read()  # what it logged while stopping counts too
            if worker.problems:
                raise RuntimeError(f"{worker.log_path.name}: {worker.problems[0]}")
        left = int(self.redis.llen(QUEUE))
        if left:
            raise RuntimeError(f"{label}: {left} messages still queued")
        check_rows(self.n, label)
        return FlowResult(label, self.n, done_before_ready, finished - ready, publish_seconds)

    @staticmethod
    def wait(
        workers: list[CeleryWorker], until: Callable[[], bool], timeout: float, what: str
    ) -> float:
        """Poll the workers' logs every 10 ms until `until()`; the time it was seen."""
        deadline = time.monotonic() + timeout
        while True:
            for worker in workers:
                worker.read()
                worker.check()
            now = time.monotonic()
            if until():
                return now
            if now > deadline:
                done = sum(w.succeeded for w in workers)
                raise RuntimeError(f"not {what} after {timeout:.0f}s ({done} runs done)")
            time.sleep(0.01)


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=10_000, help="runs per flow (10000)")
    parser.add_argument("--operators", type=int, default=20, help="operators polling (20)")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of flows (1); best kept")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per flow (max(120, runs/10))"
    )
    parser.add_argument(
        "--force-flush", action="store_true", help="FLUSHDB even if Redis holds other keys"
    )
    args = parser.parse_args(argv)
    if not (1 <= args.runs <= 1_000_000 and 1 <= args.operators <= 200 and 1 <= args.repeats <= 10):
        parser.error("--runs 1..1000000, --operators 1..200, --repeats 1..10")
    return args


def interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


def emit_latencies(name: str, values: list[float]) -> None:
    emit(f"{name}_count", len(values))
    for label, p in (("p50", 50), ("p95", 95), ("max", 100)):
        emit(f"{name}_{label}_ms", percentile(values, p) * 1000)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["DEBUG"] = "false"  # the production code path: no query log, no debug pages
    os.environ["HTTPS"] = "false"  # plain HTTP on the loopback; TLS is a proxy's job anyway
    os.environ.setdefault("ALLOWED_HOSTS", f"{HOST},localhost")
    prepare_env(debug_default="false")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started ignoring it
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    setup_django()
    migrate()
    import redis
    from django.conf import settings
    from django.core.management import call_command

    from . import jobs  # noqa: F401 - registers bench.steps in this process

    # Production's static storage needs its manifest to render a full page.
    call_command("collectstatic", interactive=False, verbosity=0)
    url: str = settings.CELERY_BROKER_URL
    client = redis.Redis.from_url(url)
    timeout: float = args.timeout or max(120.0, args.runs / 10)
    log_dir = Path(settings.DATA_DIR) / "bench-load"
    log_dir.mkdir(parents=True, exist_ok=True)
    emit("database", database_label())
    emit("redis", redis_label(url))
    flush_redis(client, url, args.force_flush)
    emit("debug", settings.DEBUG)
    emit("runs", args.runs)
    emit("operators", args.operators)
    emit("repeats", args.repeats)
    emit("workers", f"{WORKERS} x prefork 2, --without-mingle --without-gossip, no -E, -l INFO")
    emit("web", "gunicorn gthread, 2 workers x 8 threads, 127.0.0.1")
    emit("logs", log_dir)
    emit("load_average_before", load_average())

    web = WebServer(log_dir / "gunicorn.log")
    samples = Samples()
    results: dict[bool, list[FlowResult]] = {False: [], True: []}
    keys: list[str] = []
    user_created = False
    try:
        delete_rows()
        cookies, keys, user_created = make_sessions(args.operators)
        web.start()
        web.warm_up(cookies[0])
        bench = Bench(args.runs, log_dir, timeout, client, web.port, cookies, samples)
        for repeat in range(1, args.repeats + 1):
            order = (False, True) if repeat % 2 else (True, False)
            for watched in order:
                label = f"{'watched' if watched else 'unwatched'}-{repeat}"
                result = bench.flow(label, watched)
                results[watched].append(result)
                emit(f"throughput_{label.replace('-', '_run')}_per_s", result.rate)
                emit(
                    f"runs_done_before_ready_{label.replace('-', '_run')}", result.done_before_ready
                )
    except Interrupted as stopped:
        print(f"interrupted ({stopped}); stopped what it started", file=sys.stderr)
        return 130
    finally:
        with signals_deferred():
            web.stop()
            delete_rows()
            delete_sessions(keys, user_created)
            client.flushdb()

    polls = samples.polls()
    for kind in sorted(samples.latencies):
        emit_latencies(f"poll_{kind}" if kind in POLL_KINDS else kind, samples.latencies[kind])
    web_problems = web.problems()
    errors = samples.http_errors + samples.request_errors + web_problems
    emit("http_errors", len(samples.http_errors))
    emit("request_errors", len(samples.request_errors))
    emit("web_log_errors", len(web_problems))
    emit("reconnects", samples.reconnects)
    for message in errors[:10]:
        print(f"  error: {message}", flush=True)
    emit("publish_per_s", max(r.runs / r.publish_seconds for rs in results.values() for r in rs))
    emit("load_average_after", load_average())
    emit_latencies("poll", polls)
    unwatched_rate = max(r.rate for r in results[False])
    watched_rate = max(r.rate for r in results[True])
    emit("throughput_unwatched_per_s", unwatched_rate)
    emit("throughput_watched_per_s", watched_rate)
    if errors or not polls:
        print(f"FAILED: {len(errors)} errors, {len(polls)} polls", file=sys.stderr, flush=True)
        return 1
    emit("ratio", watched_rate / unwatched_rate)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (KeyboardInterrupt, Interrupted):
        print("interrupted; stopped what it started", file=sys.stderr)
        raise SystemExit(130) from None
