"""Cost of `ctx.progress()` in a hot loop: a job calling it 100,000 times vs the same loop without.

    python -m bench.progress [--iterations 100000] [--rounds 5]

In this process, against the real database: a Run row in STARTED (bench-only, deleted at the
end) and a JobContext with the worker's real store, `LedgerProgressStore(task_id, retries=0)`,
so every throttled write is the real `lifecycle.mark_progress` (an UPDATE in a transaction and
the cancellation check). Each iteration does a small, realistic unit of work: serialise one
record (a 5-key dict) with json.dumps and hash it with sha256, a few microseconds. The "with"
loop also calls `ctx.progress(i + 1, N, "Processed ...")` and ends with `ctx.flush()`, which
is inside its timing. A fresh context per round writes at its first call (like a job's first
progress point), then at most every 0.5 s, then once at the flush. Each round runs the loop
without, with, and with a store that writes nothing (the in-memory cost alone, printed for
information); the fastest round of each variant is compared (the least disturbed by
anything else on the machine, as usual for micro-benchmarks).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import uuid

from tasks_app.jobs.context import ProgressSnapshot, ProgressStore

from .common import database_label, emit, median, migrate, prepare_env, setup_django


def work(i: int) -> bytes:
    """The per-iteration unit of work: serialise one record and fingerprint it."""
    record = {"id": i, "name": f"item-{i}", "tags": ["a", "b"], "score": i * 0.5, "ok": True}
    return hashlib.sha256(json.dumps(record).encode()).digest()


def loop_without(n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        work(i)
    return time.perf_counter() - started


class NullStore(ProgressStore):
    """A store that writes nothing: isolates the in-memory cost of `progress()`."""

    def write(self, snapshot: ProgressSnapshot, log_lines: list[str]) -> bool:
        return False


def loop_with(n: int, task_id: str, *, null_store: bool = False) -> float:
    """The loop as a job runs it on a worker: the worker's context, registered with the
    heartbeat thread that marks a progress write due every 0.5 s."""
    from tasks_app.worker.heartbeat import heartbeat
    from tasks_app.worker.task import worker_context

    ctx = worker_context(task_id, "bench.progress", retries=0)
    if null_store:
        ctx.store = NullStore()
    with heartbeat.running(task_id, ctx):
        started = time.perf_counter()
        for i in range(n):
            work(i)
            ctx.progress(i + 1, n, "Processed items")
        ctx.flush()
        return time.perf_counter() - started


def progress_writes(task_id: str) -> int:
    from tasks_app.models import Run

    return Run.objects.values_list("progress_writes", flat=True).get(task_id=task_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.progress", description=__doc__)
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args(argv)
    n: int = args.iterations
    prepare_env(debug_default="true")
    setup_django()
    migrate()
    from django.utils import timezone

    from tasks_app.models import Run, RunState

    task_id = f"bench-progress-{uuid.uuid4()}"
    now = timezone.now()
    Run.objects.create(
        task_id=task_id,
        job_name="bench.progress",
        state=RunState.STARTED,
        queued_at=now,
        started_at=now,
        heartbeat_at=now,
    )
    emit("database", database_label())
    emit("iterations", n)
    emit("rounds", args.rounds)
    emit("work", "json.dumps of a 5-key dict + sha256 of it")
    emit("statistic", "fastest of the rounds (each round: without, with, with a null store)")
    without: list[float] = []
    with_: list[float] = []
    with_null: list[float] = []
    writes: list[int] = []
    try:
        loop_without(n // 10)  # warm up
        for _ in range(args.rounds):
            without.append(loop_without(n))
            before = progress_writes(task_id)
            with_.append(loop_with(n, task_id))
            writes.append(progress_writes(task_id) - before)
            with_null.append(loop_with(n, task_id, null_store=True))
        state = Run.objects.values_list("state", "progress_done").get(task_id=task_id)
    finally:
        Run.objects.filter(task_id=task_id).delete()
    if state != (RunState.PROGRESS, n):
        raise RuntimeError(f"The run ended as {state}, not ({RunState.PROGRESS}, {n}).")
    loop_without_s = min(without)
    loop_with_s = min(with_)
    emit("loop_without_s", f"{loop_without_s:.4f}")
    emit("loop_with_s", f"{loop_with_s:.4f}")
    emit("work_per_iteration_us", loop_without_s / n * 1e6)
    emit("progress_writes", int(median(writes)))
    emit("loop_with_null_store_s", f"{min(with_null):.4f}")
    emit("per_call_in_memory_us", (min(with_null) - loop_without_s) / n * 1e6)
    emit("per_write_ms", (loop_with_s - min(with_null)) / max(median(writes), 1) * 1e3)
    emit("per_call_overhead_us", (loop_with_s - loop_without_s) / n * 1e6)
    print(f"ratio: {loop_with_s / loop_without_s:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
