"""The stats rollup counts each final run exactly once into its hour and into the all-time
totals: known runs land in the right buckets, ties in finish time across a batch boundary are
neither skipped nor counted twice, a second pass adds nothing, deleting runs never lowers the
totals, and rollups running at the same moment do not double count."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection

from tasks_app.metrics import rollup
from tasks_app.metrics.quantiles import bucket_index
from tasks_app.models import JobHourStats, JobTotals, RollupMark, Run, RunState

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)
_ids = itertools.count()


def make_run(
    job_name: str,
    state: RunState,
    *,
    queued_at: datetime,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    eta: datetime | None = None,
) -> Run:
    return Run.objects.create(
        task_id=f"rollup-{next(_ids)}", job_name=job_name, state=state, queued_at=queued_at,
        started_at=started_at, finished_at=finished_at, eta=eta,
    )  # fmt: skip


def after(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def totals(job_name: str, state: RunState) -> JobTotals:
    return JobTotals.objects.get(job_name=job_name, state=state)


def lag() -> timedelta:
    """How long a final run waits before a rollup counts it (more than the 2 s used below)."""
    return timedelta(seconds=settings.TASKDECK_ROLLUP_LAG_SECONDS)


@pytest.mark.django_db
def test_known_runs_land_in_their_hour_buckets_and_sums() -> None:
    # 10:00:00 queued, waits 2 s, runs 0.3 s.
    make_run("r.a", RunState.SUCCESS, queued_at=after(0), started_at=after(2),
             finished_at=after(2.3))  # fmt: skip
    # Queued at 10:00, ETA 10:01: the wait counts from the ETA (3 s), runs 40 s, ends 10:01:43.
    make_run("r.a", RunState.SUCCESS, queued_at=after(0), eta=after(60), started_at=after(63),
             finished_at=after(103))  # fmt: skip
    # Started before its ETA (clock skew between hosts): the wait is clamped at 0. Next hour.
    make_run("r.a", RunState.SUCCESS, queued_at=after(3590), eta=after(3700),
             started_at=after(3650), finished_at=after(3660))  # fmt: skip
    # Failed after 1 hour 40 minutes of work.
    make_run("r.a", RunState.FAILURE, queued_at=after(0), started_at=after(0.005),
             finished_at=after(6000.005))  # fmt: skip
    # Cancelled in the queue: counted, with no duration and no wait.
    make_run("r.b", RunState.REVOKED, queued_at=after(10), finished_at=after(20))
    # Not final, or final too recently (within the lag): not counted yet.
    make_run("r.a", RunState.STARTED, queued_at=after(0), started_at=after(1))
    recent = NOW - timedelta(seconds=1)
    make_run("r.a", RunState.SUCCESS, queued_at=recent, started_at=recent, finished_at=recent)

    assert rollup.roll_up(now=NOW) == 5

    success = totals("r.a", RunState.SUCCESS)
    assert (success.count, success.duration_count, success.wait_count) == (3, 3, 3)
    assert success.duration_sum == pytest.approx(0.3 + 40 + 10)
    assert success.wait_sum == pytest.approx(2 + 3 + 0)
    expected_durations = [0] * len(success.duration_buckets)
    for seconds in (0.3, 40, 10):
        expected_durations[bucket_index(seconds)] += 1
    assert success.duration_buckets == expected_durations
    assert [bucket_index(seconds) for seconds in (0.3, 40, 10)] == [5, 11, 9]
    expected_waits = [0] * len(success.wait_buckets)
    for seconds in (2, 3, 0):
        expected_waits[bucket_index(seconds)] += 1
    assert success.wait_buckets == expected_waits
    assert success.last_finished_at == after(3660)

    failure = totals("r.a", RunState.FAILURE)
    assert failure.count == 1
    assert failure.duration_sum == pytest.approx(6000)
    assert failure.duration_buckets[bucket_index(6000)] == 1  # the (3600, 7200] bucket
    assert failure.wait_buckets[0] == 1  # 5 ms: the first bucket (<= 10 ms)

    cancelled = totals("r.b", RunState.REVOKED)
    assert (cancelled.count, cancelled.duration_count, cancelled.wait_count) == (1, 0, 0)
    assert sum(cancelled.duration_buckets) == sum(cancelled.wait_buckets) == 0

    hours = {(row.job_name, row.hour, row.state): row.count for row in JobHourStats.objects.all()}
    assert hours == {
        ("r.a", T0, RunState.SUCCESS): 2,
        ("r.a", T0 + timedelta(hours=1), RunState.SUCCESS): 1,
        ("r.a", T0 + timedelta(hours=1), RunState.FAILURE): 1,
        ("r.b", T0, RunState.REVOKED): 1,
    }
    first_hour = JobHourStats.objects.get(job_name="r.a", hour=T0, state=RunState.SUCCESS)
    assert first_hour.duration_sum == pytest.approx(40.3)
    assert first_hour.last_finished_at == after(103)
    mark = RollupMark.objects.get(name=rollup.MARK_NAME)
    assert mark.upto == NOW - lag()


@pytest.mark.django_db
def test_a_second_pass_adds_only_what_finished_since() -> None:
    make_run("r.c", RunState.SUCCESS, queued_at=after(0), started_at=after(1), finished_at=after(2))
    assert rollup.roll_up(now=NOW) == 1
    assert rollup.roll_up(now=NOW) == 0  # idempotent: same moment, nothing new
    assert rollup.roll_up(now=NOW - timedelta(hours=1)) == 0  # an older clock never recounts
    assert totals("r.c", RunState.SUCCESS).count == 1

    # A run that finished within the lag of the first pass is counted by the next one.
    late = NOW - timedelta(seconds=2)
    make_run("r.c", RunState.SUCCESS, queued_at=late, started_at=late, finished_at=late)
    assert rollup.roll_up(now=NOW + lag()) == 1
    row = totals("r.c", RunState.SUCCESS)
    assert row.count == 2
    assert row.last_finished_at == late
    assert JobHourStats.objects.get(hour=T0, job_name="r.c").count == 1
    late_hour = late.replace(minute=0, second=0, microsecond=0)
    assert JobHourStats.objects.get(hour=late_hour, job_name="r.c").count == 1


@pytest.mark.django_db
def test_runs_sharing_a_finish_time_across_batches_are_counted_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rollup, "BATCH_SIZE", 3)
    tie = after(1800)
    make_run("r.tie", RunState.SUCCESS, queued_at=after(0), finished_at=after(100))
    make_run("r.tie", RunState.SUCCESS, queued_at=after(0), finished_at=after(200))
    for _ in range(7):  # the tie straddles the batches [2 + 1], [3], [3], ...
        make_run("r.tie", RunState.FAILURE, queued_at=after(0), finished_at=tie)
    for hour in range(1, 6):  # later hours, flushed mid-pass as the batches pass them
        make_run("r.tie", RunState.SUCCESS, queued_at=after(0), finished_at=after(3600 * hour))

    assert rollup.roll_up(now=NOW) == 14
    assert totals("r.tie", RunState.FAILURE).count == 7
    assert totals("r.tie", RunState.SUCCESS).count == 7
    by_hour = dict(JobHourStats.objects.filter(state=RunState.SUCCESS).values_list("hour", "count"))
    assert by_hour == {T0: 2, **{T0 + timedelta(hours=h): 1 for h in range(1, 6)}}
    assert rollup.roll_up(now=NOW) == 0


@pytest.mark.django_db
def test_deleting_runs_never_lowers_the_totals() -> None:
    for second in (1, 2, 3):
        make_run("r.d", RunState.SUCCESS, queued_at=after(0), finished_at=after(second))
    assert rollup.roll_up(now=NOW) == 3

    Run.objects.filter(job_name="r.d").delete()  # what the cleanup job does
    assert rollup.roll_up(now=NOW + timedelta(minutes=1)) == 0
    assert totals("r.d", RunState.SUCCESS).count == 3
    assert JobHourStats.objects.get(job_name="r.d").count == 3


ROLLUPS = 4


def roll_up_in_parallel(now: datetime) -> list[int]:
    """`ROLLUPS` threads, each with its own database connection, roll up at the same moment."""
    start = threading.Barrier(ROLLUPS)
    counted: list[int] = []
    errors: list[BaseException] = []

    def roll() -> None:
        try:
            start.wait()
            counted.append(rollup.roll_up(now=now))
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=roll) for _ in range(ROLLUPS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return sorted(counted)


@pytest.mark.django_db(transaction=True)
def test_rollups_at_the_same_moment_count_each_run_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL the others wait on the mark's row lock, on SQLite on the write lock
    (IMMEDIATE transactions), then start from the mark the first one left."""
    monkeypatch.setattr(rollup, "BATCH_SIZE", 50)
    for index in range(300):
        make_run("r.race", RunState.SUCCESS, queued_at=after(0), finished_at=after(index // 4))
    # First pass: no mark yet, every thread tries to create it.
    assert roll_up_in_parallel(NOW) == [0] * (ROLLUPS - 1) + [300]

    # Later passes start from the stored mark.
    for index in range(200):
        make_run(
            "r.race",
            RunState.FAILURE,
            queued_at=NOW,
            finished_at=NOW + timedelta(seconds=index // 4),
        )
    assert roll_up_in_parallel(NOW + timedelta(hours=1)) == [0] * (ROLLUPS - 1) + [200]

    assert totals("r.race", RunState.SUCCESS).count == 300
    assert totals("r.race", RunState.FAILURE).count == 200
    assert sum(JobHourStats.objects.values_list("count", flat=True)) == 500
    assert RollupMark.objects.count() == 1
