"""Throughput of no-op tasks: plain Celery (a), stock django-celery-results (b), Taskdeck (c).

    python -m bench.throughput [--tasks 5000] [--repeats 2] [--db-reuse-max K]

Every mode runs the same number of no-op tasks on the same Redis and database, with the same
worker: prefork pool, 2 processes, `--without-mingle --without-gossip`, no events, INFO log, the
project's Celery settings (JSON only, prefetch multiplier 1, STARTED tracked, extended results).

- a: a plain `celery.Task` on an app without a result backend (results ignored): the limit.
- b: the same task with stock django-celery-results (`result_backend = "django-db"`).
- c: `celery -A dashboard worker --include bench.jobs` running the `@job` `bench.noop`: the
  ledger row written at publish, then the LedgerBackend (run + TaskResult) and the task class.

Method, per mode and repeat: the N messages are published to the mode's own queue while no
worker runs (timed apart: `publish_X_per_s`); then the worker starts, and the rate is
N / (time from its "ready." log line to its N-th "Task ... succeeded" log line), both seen by
polling its log every 10 ms. Celery writes that line after the result backend has stored
SUCCESS, so for b and c every result is committed by then; the script then checks that the
queue is empty, that b left N TaskResult rows in SUCCESS and c N TaskResult and N Run rows in
SUCCESS. Modes run interleaved (a b c, then c b a, ...) and each mode's best repeat is reported.
The bench's rows are deleted before and after; the Redis database of REDIS_URL is flushed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import (
    Worker,
    database_label,
    emit,
    is_postgresql,
    load_average,
    migrate,
    prepare_env,
    redis_label,
    setup_django,
)

MODES = ("a", "b", "c")
TARGET_C_OVER_B = 1.0
TARGET_C_OVER_A = 0.5
# Keys a bench Redis database may hold; anything else means it is someone else's database.
OWN_KEY_PREFIXES = (b"bench.", b"_kombu.", b"unacked", b"celery")


@dataclass
class RunResult:
    mode: str
    publish_s: float
    run_s: float
    pg_sessions: int | None = None
    pg_commits: int | None = None

    def rate(self, n: int) -> float:
        return n / self.run_s


def queue_name(mode: str) -> str:
    return f"bench.{mode}"


def worker_args(mode: str, name: str) -> list[str]:
    app = "dashboard" if mode == "c" else "bench.stock_app"
    args = [
        sys.executable, "-m", "celery", "-A", app, "worker",
        "-l", "INFO", "-n", f"{name}@%h", "-Q", queue_name(mode),
        "--concurrency", "2", "-P", "prefork", "--without-mingle", "--without-gossip",
    ]  # fmt: skip
    if mode == "c":
        args += ["--include", "bench.jobs"]
    return args


def worker_env(mode: str) -> dict[str, str]:
    env = dict(os.environ)
    if mode != "c":
        env["BENCH_STOCK_MODE"] = mode
    return env


class Bench:
    def __init__(self, n: int, log_dir: Path, timeout: float) -> None:
        import redis
        from django.conf import settings

        from dashboard.celery import app as dashboard_app

        from . import jobs
        from .stock_app import STOCK_NOOP, make_app

        self.n = n
        self.log_dir = log_dir
        self.timeout = timeout
        self.redis_url: str = settings.CELERY_BROKER_URL
        self.redis = redis.Redis.from_url(self.redis_url)
        self.tasks: dict[str, Any] = {
            "a": make_app("a").tasks[STOCK_NOOP],
            "b": make_app("b").tasks[STOCK_NOOP],
            "c": dashboard_app.tasks[jobs.NOOP_JOB],
        }

    # --- Redis ---------------------------------------------------------------------------
    def flush_redis(self, force: bool) -> None:
        foreign = [
            key for key in self.redis.scan_iter(count=1000) if not key.startswith(OWN_KEY_PREFIXES)
        ]
        if foreign and not force:
            raise SystemExit(
                f"Refusing to FLUSHDB {redis_label(self.redis_url)}: it holds other keys "
                f"(e.g. {foreign[0]!r}). Give the bench a Redis database of its own "
                "(REDIS_URL=redis://127.0.0.1:6379/14) or pass --force-flush."
            )
        self.redis.flushdb()

    def queue_length(self, mode: str) -> int:
        return int(self.redis.llen(queue_name(mode)))

    # --- database ------------------------------------------------------------------------
    def delete_rows(self) -> None:
        from django_celery_results.models import TaskResult

        from tasks_app.models import Run

        from .jobs import NOOP_JOB
        from .stock_app import STOCK_NOOP

        TaskResult.objects.filter(task_name__in=[STOCK_NOOP, NOOP_JOB]).delete()
        Run.objects.filter(job_name=NOOP_JOB).delete()

    def check_rows(self, mode: str) -> None:
        from django_celery_results.models import TaskResult

        from tasks_app.models import Run, RunState

        from .jobs import NOOP_JOB
        from .stock_app import STOCK_NOOP

        if mode == "a":
            return
        name = NOOP_JOB if mode == "c" else STOCK_NOOP
        results = TaskResult.objects.filter(task_name=name, status="SUCCESS").count()
        if results != self.n:
            raise RuntimeError(f"mode {mode}: {results} TaskResult rows in SUCCESS, not {self.n}")
        if mode == "c":
            runs = Run.objects.filter(job_name=NOOP_JOB, state=RunState.SUCCESS).count()
            if runs != self.n:
                raise RuntimeError(f"mode c: {runs} Run rows in SUCCESS, not {self.n}")

    @staticmethod
    def pg_stats() -> tuple[int, int] | None:
        """PostgreSQL's counters for this database: sessions opened, transactions committed."""
        if not is_postgresql():
            return None
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT sessions, xact_commit FROM pg_stat_database WHERE datname = "
                "current_database()"
            )
            row = cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else None

    # --- one measurement -----------------------------------------------------------------
    def run(self, mode: str, repeat: int) -> RunResult:
        from django.db import connection

        self.delete_rows()
        self.redis.delete(queue_name(mode))
        task = self.tasks[mode]
        queue = queue_name(mode)
        started = time.perf_counter()
        for _ in range(self.n):
            task.apply_async(queue=queue)
        publish_s = time.perf_counter() - started
        queued = self.queue_length(mode)
        if queued != self.n:
            raise RuntimeError(f"mode {mode}: {queued} messages queued, not {self.n}")

        # The publisher's own session must not count, nor stay open while the worker runs.
        connection.close()
        before = self.pg_stats()
        worker = Worker(
            worker_args(mode, f"bench-{mode}-{os.getpid()}"),
            self.log_dir / f"worker-{mode}-{repeat}.log",
            worker_env(mode),
        )
        try:
            ready = worker.start()
            done = worker.wait_succeeded(self.n, self.timeout)
        finally:
            worker.stop()
        after = self.pg_stats()
        left = self.queue_length(mode)
        if left:
            raise RuntimeError(f"mode {mode}: {left} messages still queued")
        self.check_rows(mode)
        result = RunResult(mode, publish_s, done - ready)
        if before is not None and after is not None:
            # The worker's sessions and commits (give or take this process's own one).
            result.pg_sessions = after[0] - before[0]
            result.pg_commits = after[1] - before[1]
        return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__)
    parser.add_argument("--tasks", type=int, default=5000, help="tasks per mode (5000)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each mode (2); best kept")
    parser.add_argument(
        "--db-reuse-max",
        type=int,
        default=None,
        metavar="K",
        help="run every worker with CELERY_DB_REUSE_MAX=K (0: a new connection per task)",
    )
    parser.add_argument(
        "--force-flush", action="store_true", help="FLUSHDB even if Redis holds other keys"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n: int = args.tasks
    prepare_env(debug_default="false")
    if args.db_reuse_max is not None:
        os.environ["CELERY_DB_REUSE_MAX"] = str(args.db_reuse_max)  # read by the settings
    setup_django()
    migrate()
    from django.conf import settings

    log_dir = Path(settings.DATA_DIR) / "bench"
    bench = Bench(n, log_dir, timeout=max(120.0, n / 10))
    emit("database", database_label())
    emit("redis", redis_label(bench.redis_url))
    bench.flush_redis(force=args.force_flush)
    emit("redis_flushed", f"FLUSHDB of {redis_label(bench.redis_url)} only")
    emit("debug", settings.DEBUG)
    emit("db_reuse_max", settings.CELERY_DB_REUSE_MAX or "0 (a new connection per task)")
    emit("tasks", n)
    emit("repeats", args.repeats)
    emit("statistic", "best (highest rate) of the repeats")
    emit("worker", "prefork, concurrency 2, --without-mingle --without-gossip, no -E, -l INFO")
    emit("worker_logs", log_dir)
    emit("load_average_before", load_average())

    results: dict[str, list[RunResult]] = {mode: [] for mode in MODES}
    try:
        for repeat in range(1, args.repeats + 1):
            order = MODES if repeat % 2 else tuple(reversed(MODES))
            for mode in order:
                result = bench.run(mode, repeat)
                results[mode].append(result)
                emit(f"rate_{mode}_run{repeat}_per_s", result.rate(n))
    finally:
        bench.delete_rows()
        bench.redis.flushdb()

    best = {mode: max(runs, key=lambda r: r.rate(n)) for mode, runs in results.items()}
    for mode in MODES:
        emit(f"publish_{mode}_per_s", max(n / r.publish_s for r in results[mode]))
    for mode in MODES:
        sessions, commits = best[mode].pg_sessions, best[mode].pg_commits
        if sessions is not None and commits is not None:
            emit(f"pg_sessions_per_task_{mode}", sessions / n)
            emit(f"pg_commits_per_task_{mode}", commits / n)
    rates = {mode: best[mode].rate(n) for mode in MODES}
    for mode in MODES:
        emit(f"rate_{mode}_per_s", rates[mode])
    c_over_a = rates["c"] / rates["a"]
    c_over_b = rates["c"] / rates["b"]
    emit("load_average_after", load_average())
    emit("ratio_b_over_a", rates["b"] / rates["a"])
    emit("ratio_c_over_a", c_over_a)
    emit("ratio_c_over_b", c_over_b)
    emit("target_c_over_a", f">= {TARGET_C_OVER_A} {'met' if c_over_a >= 0.5 else 'MISSED'}")
    emit("target_c_over_b", f">= {TARGET_C_OVER_B} {'met' if c_over_b >= 1.0 else 'MISSED'}")
    print(f"ratio: {c_over_b:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
