"""Launching many runs: one at a time (`services.job_launch`) vs a batch (`jobs_launch_many`).

    python -m bench.launch_batch [--runs 1000] [--repeats 3] [--force-flush]

Both modes queue N runs of the `@job` `bench.noop` through the services, as the API does
(permission, validation, ledger row, message, audit), with no worker running:
- single: N calls of `services.job_launch`: per run, an INSERT (its own transaction), a
  message on a producer taken from the pool, an audit row;
- batch: one `services.jobs_launch_many` of N items: one INSERT for the N rows (split on
  SQLite, one transaction), then N messages on one producer, one audit row;
- apply_async (for reference): N `apply_async` of `bench.noop` in code: the ledger's row and
  message, without the service's checks and audit (`publish_c` of `bench.throughput`);
- celery (for reference): N plain `apply_async` of a stock Celery task (no ledger), the
  publish limit.
The rate is N / the time of the N launches. After each, the queue must hold N more messages
and (but celery) the ledger N PENDING runs. Modes run interleaved (in the order below, then
reversed, ...) and the best repeat of each is reported. Rows and messages are deleted between
repeats; like `bench.throughput`, the Redis database of REDIS_URL is flushed before and after
(refused if it holds keys that are not Celery's or the bench's).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from .common import (
    database_label,
    emit,
    load_average,
    migrate,
    prepare_env,
    redis_label,
    setup_django,
)

MODES = ("single", "batch", "apply_async", "celery")
TARGET_BATCH_OVER_SINGLE = 3.0
OWN_KEY_PREFIXES = (b"bench.", b"_kombu.", b"unacked", b"celery", b"default", b"low", b"high")
QUEUE = "bench.launch"  # the stock task's queue; the ledger modes use the job's own


def launchers(n: int) -> dict[str, Callable[[], None]]:
    """Each mode's N launches, ready to time."""
    from dashboard.celery import app
    from tasks_app import services
    from tasks_app.models import RunSource

    from .jobs import NOOP_JOB
    from .stock_app import STOCK_NOOP, make_app

    actor = services.Actor(system="bench")
    ledger = app.tasks[NOOP_JOB]
    stock = make_app("a").tasks[STOCK_NOOP]

    def single() -> None:
        for _ in range(n):
            services.job_launch(NOOP_JOB, {}, actor=actor, source=RunSource.API)

    def batch() -> None:
        services.jobs_launch_many(NOOP_JOB, [{}] * n, actor=actor, source=RunSource.API)

    def apply_async() -> None:
        for _ in range(n):
            ledger.apply_async()

    def celery() -> None:
        for _ in range(n):
            stock.apply_async(queue=QUEUE)

    return {"single": single, "batch": batch, "apply_async": apply_async, "celery": celery}


class Bench:
    def __init__(self, n: int) -> None:
        import redis
        from django.conf import settings

        from tasks_app.jobs.registry import get_job

        from .jobs import NOOP_JOB

        self.n = n
        self.redis_url: str = settings.CELERY_BROKER_URL
        self.redis = redis.Redis.from_url(self.redis_url)
        self.job_queue = get_job(NOOP_JOB).queue or "celery"
        self.launch = launchers(n)

    def flush_redis(self, force: bool) -> None:
        foreign = [
            key for key in self.redis.scan_iter(count=1000) if not key.startswith(OWN_KEY_PREFIXES)
        ]
        if foreign and not force:
            raise SystemExit(
                f"Refusing to FLUSHDB {redis_label(self.redis_url)}: it holds other keys "
                f"(e.g. {foreign[0]!r}). Give the bench a Redis database of its own or pass "
                "--force-flush."
            )
        self.redis.flushdb()

    def clean(self) -> None:
        from tasks_app.models import AuditEntry, Run

        from .jobs import NOOP_JOB

        Run.objects.filter(job_name=NOOP_JOB).delete()
        AuditEntry.objects.filter(actor_label="bench").delete()
        self.redis.delete(QUEUE, self.job_queue)

    def check(self, mode: str) -> None:
        from tasks_app.models import Run, RunState

        from .jobs import NOOP_JOB

        queue = QUEUE if mode == "celery" else self.job_queue
        queued = int(self.redis.llen(queue))
        if queued != self.n:
            raise RuntimeError(f"{mode}: {queued} messages in {queue}, not {self.n}")
        if mode != "celery":
            runs = Run.objects.filter(job_name=NOOP_JOB, state=RunState.PENDING).count()
            if runs != self.n:
                raise RuntimeError(f"{mode}: {runs} PENDING runs, not {self.n}")

    def run(self, mode: str) -> float:
        """Seconds for the N launches of `mode`."""
        self.clean()
        started = time.perf_counter()
        self.launch[mode]()
        elapsed = time.perf_counter() - started
        self.check(mode)
        return elapsed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.launch_batch", description=__doc__)
    parser.add_argument("--runs", type=int, default=1000, help="runs per launch mode (1000)")
    parser.add_argument("--repeats", type=int, default=3, help="of each mode (3); best kept")
    parser.add_argument(
        "--force-flush", action="store_true", help="FLUSHDB even if Redis holds other keys"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n: int = args.runs
    prepare_env(debug_default="false")
    setup_django()
    migrate()
    from django.conf import settings

    if n > settings.TASKDECK_BULK_LIMIT:
        raise SystemExit(f"--runs is at most TASKDECK_BULK_LIMIT ({settings.TASKDECK_BULK_LIMIT})")
    bench = Bench(n)
    emit("database", database_label())
    emit("redis", redis_label(bench.redis_url))
    bench.flush_redis(force=args.force_flush)
    emit("debug", settings.DEBUG)
    emit("runs", n)
    emit("repeats", args.repeats)
    emit("statistic", "best (highest rate) of the repeats")
    emit("load_average_before", load_average())
    seconds: dict[str, list[float]] = {mode: [] for mode in MODES}
    try:
        for repeat in range(1, args.repeats + 1):
            order = MODES if repeat % 2 else tuple(reversed(MODES))
            for mode in order:
                elapsed = bench.run(mode)
                seconds[mode].append(elapsed)
                emit(f"{mode}_run{repeat}_per_s", n / elapsed)
    finally:
        bench.clean()
        bench.redis.flushdb()
    rates: dict[str, Any] = {mode: n / min(seconds[mode]) for mode in MODES}
    for mode in MODES:
        emit(f"{mode}_per_s", rates[mode])
    ratio = rates["batch"] / rates["single"]
    emit("load_average_after", load_average())
    emit("ratio_batch_over_celery", rates["batch"] / rates["celery"])
    met = "met" if ratio >= TARGET_BATCH_OVER_SINGLE else "MISSED"
    emit("target_batch_over_single", f">= {TARGET_BATCH_OVER_SINGLE} {met}")
    print(f"ratio: {ratio:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
