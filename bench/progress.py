"""Cost of `ctx.progress()` in a hot loop: a job calling it 100,000 times vs the same loop without.

    python -m bench.progress [--iterations 100000] [--rounds 9] [--block 1000]

In this process, against the real database: a Run row in STARTED (bench-only, deleted at the
end) and a JobContext with the worker's real store, `LedgerProgressStore(task_id, retries=0)`,
so every throttled write is the real `lifecycle.mark_progress` (an UPDATE in a transaction and
the cancellation check), done by the heartbeat thread as on a worker. Each iteration does a
small, realistic unit of work: serialise one record (a 5-key dict) with json.dumps and hash it
with sha256, a few microseconds. The job's loop counts from 1, as `enumerate(items, 1)` does,
and calls `ctx.progress(done, N, "Processed ...")` after each item; a fresh context per round
writes at its first call (like a job's first progress point), then at most every 0.5 s (the
heartbeat thread's tick), and once more at `ctx.flush()`, which is timed with the loop. The
interval writes run on the heartbeat thread, so the loop pays for their Python part (the GIL),
not for the commit's wait; the flush writes in the loop's thread.

How it is timed: a round runs the N items twice, the bare loop and the job's loop, in
alternating blocks of `--block` items (a few milliseconds each; which of the two goes first
alternates too). Both loops therefore see the same machine: a virtual machine's speed drifts
by several per cent over seconds, which timing each loop whole (the fastest of several rounds)
could not tell from a 3 % cost. `ratio` is the job loop's total time over the bare loop's,
all rounds together, every write and the flush included; writes are over-counted if anything,
since they come per 0.5 s of wall time and the round takes twice the job loop's time. Also
printed: the same rounds with a store that writes nothing (the in-memory cost alone), the
median of the block-by-block ratios, and how long a write takes from start to end, wherever
it runs (on the heartbeat thread that includes waiting for the GIL).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field

from tasks_app.jobs.context import JobContext, ProgressSnapshot, ProgressStore

from .common import database_label, emit, median, migrate, prepare_env, setup_django


def work(i: int) -> bytes:
    """The per-iteration unit of work: serialise one record and fingerprint it."""
    record = {"id": i, "name": f"item-{i}", "tags": ["a", "b"], "score": i * 0.5, "ok": True}
    return hashlib.sha256(json.dumps(record).encode()).digest()


def bare_block(start: int, stop: int) -> float:
    started = time.perf_counter()
    for done in range(start, stop):
        work(done)
    return time.perf_counter() - started


def job_block(ctx: JobContext, start: int, stop: int, total: int) -> float:
    started = time.perf_counter()
    for done in range(start, stop):
        work(done)
        ctx.progress(done, total, "Processed items")
    return time.perf_counter() - started


class NullStore(ProgressStore):
    """A store that writes nothing: isolates the in-memory cost of `progress()`."""

    def write(self, snapshot: ProgressSnapshot, log_lines: list[str]) -> bool:
        return False


@dataclass
class TimedStore(ProgressStore):
    """Passes writes through to the real store and adds up the time they take."""

    inner: ProgressStore
    writes: int = 0
    seconds: float = 0.0

    def write(self, snapshot: ProgressSnapshot, log_lines: list[str]) -> bool:
        started = time.perf_counter()
        try:
            return self.inner.write(snapshot, log_lines)
        finally:
            self.seconds += time.perf_counter() - started
            self.writes += 1


@dataclass
class Totals:
    without: float = 0.0
    with_: float = 0.0
    block_ratios: list[float] = field(default_factory=list)
    writes: int = 0
    write_seconds: float = 0.0


def run_round(totals: Totals, n: int, block: int, task_id: str, *, null_store: bool) -> None:
    """The N items as a job runs them on a worker (the worker's context, registered with the
    heartbeat thread that marks a write due every 0.5 s), interleaved with the bare loop."""
    from tasks_app.worker.heartbeat import heartbeat
    from tasks_app.worker.task import worker_context

    ctx = worker_context(task_id, "bench.progress", retries=0)
    store = TimedStore(NullStore() if null_store else ctx.store)
    ctx.store = store
    with heartbeat.running(task_id, ctx):
        for k, start in enumerate(range(1, n + 1, block)):
            stop = min(start + block, n + 1)
            if k % 2:
                bare = bare_block(start, stop)
                job = job_block(ctx, start, stop, n)
            else:
                job = job_block(ctx, start, stop, n)
                bare = bare_block(start, stop)
            totals.without += bare
            totals.with_ += job
            totals.block_ratios.append(job / bare)
        started = time.perf_counter()
        ctx.flush()
        totals.with_ += time.perf_counter() - started
    totals.writes += store.writes
    totals.write_seconds += store.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.progress", description=__doc__)
    parser.add_argument("--iterations", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--block", type=int, default=1_000)
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
    emit("block", args.block)
    emit("work", "json.dumps of a 5-key dict + sha256 of it")
    emit("statistic", "total time of the job loop / the bare loop, interleaved block by block")
    real, null = Totals(), Totals()
    try:
        bare_block(1, n // 10)  # warm up
        for _ in range(args.rounds):
            run_round(real, n, args.block, task_id, null_store=False)
            run_round(null, n, args.block, task_id, null_store=True)
        state = Run.objects.values_list("state", "progress_done").get(task_id=task_id)
    finally:
        Run.objects.filter(task_id=task_id).delete()
    if state != (RunState.PROGRESS, n):
        raise RuntimeError(f"The run ended as {state}, not ({RunState.PROGRESS}, {n}).")
    calls = n * args.rounds
    emit("loop_without_s", f"{real.without / args.rounds:.4f}")
    emit("loop_with_s", f"{real.with_ / args.rounds:.4f}")
    emit("work_per_iteration_us", real.without / calls * 1e6)
    emit("progress_writes", real.writes / args.rounds)
    emit("per_write_ms", real.write_seconds / max(real.writes, 1) * 1e3)
    emit("per_call_overhead_us", (real.with_ - real.without) / calls * 1e6)
    emit("null_store_ratio", null.with_ / null.without)
    emit("per_call_in_memory_us", (null.with_ - null.without) / calls * 1e6)
    emit("median_block_ratio", f"{median(real.block_ratios):.3f}")
    print(f"ratio: {real.with_ / real.without:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
