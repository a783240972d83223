"""JobContext: throttled progress that always stores the last value, bounded logs, counters,
and cancellation surfacing at progress points."""

from __future__ import annotations

import threading

import pytest

from tasks_app.jobs.context import LOG_BUFFER_LIMIT, JobContext, ProgressSnapshot
from tasks_app.jobs.errors import JobCancelled
from tasks_app.jobs.testing import RecordingStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class HandOver:
    """Stands in for the heartbeat thread: counts hand-overs; the test does the writes."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def make(
    store: RecordingStore | None = None, *, handing_over: bool = False
) -> tuple[JobContext, RecordingStore, FakeClock]:
    """A self-timed context on a fake clock; `handing_over`: timed by heartbeat ticks, its due
    writes handed over as on a worker (the test then does them with `write_handed_over`)."""
    store = store or RecordingStore()
    clock = FakeClock()
    ctx = JobContext("t", "job", store, write_interval=0.5, clock=clock)
    if handing_over:
        ctx.self_timed = False
        ctx.hand_over = HandOver()
    return ctx, store, clock


def test_progress_in_a_hot_loop_writes_at_most_twice_a_second_and_keeps_the_last_value() -> None:
    ctx, store, clock = make()

    for i in range(1, 10_001):  # 10,000 calls over 5 simulated seconds
        clock.now += 0.0005
        ctx.progress(i, 10_000, f"item {i}")
    ctx.flush()

    assert 10 <= len(store.writes) <= 12
    assert (store.writes[-1].done, store.writes[-1].total) == (10_000, 10_000)
    assert store.writes[-1].message == "item 10000"


def test_flush_without_news_writes_nothing() -> None:
    ctx, store, _ = make()
    ctx.progress(1, 2)
    writes = len(store.writes)

    ctx.flush()

    assert len(store.writes) == writes


def test_log_lines_are_kept_bounded_and_written_with_progress() -> None:
    ctx, store, _ = make()

    for i in range(LOG_BUFFER_LIMIT + 50):
        ctx.log(f"line {i}")
    ctx.flush()

    assert len(store.log_lines) == LOG_BUFFER_LIMIT
    assert store.log_lines[-1] == f"line {LOG_BUFFER_LIMIT + 49}"


def test_cancellation_seen_by_a_write_surfaces_at_the_next_progress_point() -> None:
    ctx, _, _ = make(RecordingStore(cancel_after_writes=1))

    with pytest.raises(JobCancelled):
        ctx.progress(1, 10)


def test_cancellation_from_the_heartbeat_needs_no_database_read() -> None:
    ctx, store, _ = make()
    ctx.progress(1, 10)
    writes = len(store.writes)

    ctx.request_cancel()

    with pytest.raises(JobCancelled):
        ctx.progress(2, 10)
    assert len(store.writes) == writes  # throttled: the flag alone stopped it


def test_counters_end_up_in_the_result() -> None:
    ctx, _, _ = make()
    ctx.count("processed", 3)
    ctx.count("skipped")

    assert ctx.result_with_counters({"rows": 3}) == {
        "rows": 3, "counters": {"processed": 3, "skipped": 1},
    }  # fmt: skip
    assert ctx.result_with_counters(7) == {"value": 7, "counters": {"processed": 3, "skipped": 1}}
    assert make()[0].result_with_counters(7) == 7


def test_heartbeat_ticks_never_make_writes_closer_than_the_interval() -> None:
    ctx, store, clock = make()
    ctx.self_timed = False
    ctx.progress(1, 100)  # the first call writes at once
    clock.now += 0.1
    ctx.mark_due()  # a tick right after that write is ignored
    ctx.progress(2, 100)
    clock.now += 0.5
    ctx.mark_due()
    ctx.progress(3, 100)

    assert [w.done for w in store.writes] == [1, 3]


def test_a_due_write_is_handed_over_not_done_in_the_jobs_thread() -> None:
    ctx, store, _ = make(handing_over=True)
    hand_over = ctx.hand_over
    assert isinstance(hand_over, HandOver)

    ctx.progress(1, 10, "first")  # due at once: taken and handed over
    ctx.progress(2, 10, "second")  # not due: memory only

    assert (hand_over.calls, store.writes) == (1, [])
    ctx.write_handed_over()
    ctx.write_handed_over()  # nothing more was handed over
    assert [(w.done, w.message) for w in store.writes] == [(1, "first")]


def test_the_flush_writes_the_last_value_at_once_even_with_a_write_still_handed_over() -> None:
    ctx, store, _ = make(handing_over=True)
    ctx.progress(1, 10)
    ctx.log("a line")
    ctx.progress(7, 10, "latest")

    ctx.flush()  # one write: the handed-over one, brought up to date

    assert [(w.done, w.message) for w in store.writes] == [(7, "latest")]
    assert store.log_lines == ["a line"]
    ctx.write_handed_over()  # the heartbeat thread comes late: nothing left to write
    assert len(store.writes) == 1


def test_cancellation_seen_by_a_handed_over_write_surfaces_at_the_next_progress_point() -> None:
    ctx, _, _ = make(RecordingStore(cancel_after_writes=1), handing_over=True)
    ctx.progress(1, 10)

    ctx.write_handed_over()

    with pytest.raises(JobCancelled):
        ctx.progress(2, 10)


class FailingStore(RecordingStore):
    """Fails its writes while `failing` says so (the database away), then records them."""

    failing = True

    def write(self, snapshot: ProgressSnapshot, log_lines: list[str]) -> bool:
        if self.failing:
            raise OSError("database gone")
        return super().write(snapshot, log_lines)


def test_a_failed_handed_over_write_is_kept_for_the_flush() -> None:
    store = FailingStore()
    ctx, _, _ = make(store, handing_over=True)
    ctx.log("kept")
    ctx.progress(3, 10, "three")

    with pytest.raises(OSError, match="database gone"):
        ctx.write_handed_over()
    store.failing = False
    ctx.flush()

    assert [(w.done, w.message) for w in store.writes] == [(3, "three")]
    assert store.log_lines == ["kept"]


class GatedStore(RecordingStore):
    """The first write waits for `gate`: a write in flight on the heartbeat thread."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def write(self, snapshot: ProgressSnapshot, log_lines: list[str]) -> bool:
        if not self.entered.is_set():
            self.entered.set()
            assert self.gate.wait(10)
        return super().write(snapshot, log_lines)


def test_the_flush_waits_for_a_write_in_flight_so_the_last_value_is_stored_last() -> None:
    store = GatedStore()
    ctx, _, _ = make(store, handing_over=True)
    ctx.progress(1, 10)
    writer = threading.Thread(target=ctx.write_handed_over)
    writer.start()
    assert store.entered.wait(10)  # the write of 1 is in flight
    ctx.progress(10, 10, "done")
    flusher = threading.Thread(target=ctx.flush)
    flusher.start()

    flusher.join(0.2)
    assert flusher.is_alive()  # waiting for the write in flight
    store.gate.set()
    writer.join(10)
    flusher.join(10)

    assert [w.done for w in store.writes] == [1, 10]


def test_log_lines_kept_through_failed_writes_stay_bounded_and_keep_the_latest() -> None:
    store = FailingStore()
    ctx, _, clock = make(store, handing_over=True)
    for batch in range(3):
        for i in range(LOG_BUFFER_LIMIT):
            ctx.log(f"batch {batch} line {i}")
        clock.now += 1
        ctx.mark_due()  # a tick: the next progress point takes a write
        ctx.progress(batch, 3)
        with pytest.raises(OSError, match="database gone"):
            ctx.write_handed_over()

    store.failing = False
    ctx.flush()

    assert len(store.log_lines) == LOG_BUFFER_LIMIT
    assert store.log_lines[-1] == f"batch 2 line {LOG_BUFFER_LIMIT - 1}"
    assert [w.done for w in store.writes] == [2]
