"""One flow of `python -m bench.load`: queue the runs, let two workers run them (watched or
not), check the database; and the rows, sessions and Redis data the bench sets up and removes."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import redis_label
from .load_config import QUEUE, READY_TIMEOUT, USERNAME, WORKERS
from .load_operators import Operators, Samples
from .load_services import CeleryWorker
from .load_signals import signals_deferred
from .throughput import OWN_KEY_PREFIXES


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
