"""JobContext: throttled progress that always stores the last value, bounded logs, counters,
and cancellation surfacing at progress points."""

from __future__ import annotations

import pytest

from tasks_app.jobs.context import LOG_BUFFER_LIMIT, JobContext
from tasks_app.jobs.errors import JobCancelled
from tasks_app.jobs.testing import RecordingStore


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(store: RecordingStore | None = None) -> tuple[JobContext, RecordingStore, FakeClock]:
    store = store or RecordingStore()
    clock = FakeClock()
    return JobContext("t", "job", store, write_interval=0.5, clock=clock), store, clock


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
