"""One beat fires: beats started side by side share a leader lock in Redis, so each schedule
fires once; a standby takes over when the leader dies (after the lock expires) or stops (at
once), and a takeover sends nothing again that the old leader already sent.

Real `celery beat` subprocesses with Taskdeck's scheduler, a real worker, the test database.
Runs are counted in the ledger, where beat records each one as it sends it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest
from celery import Celery
from django.core.exceptions import ImproperlyConfigured
from django.db import connections
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tasks_app.models import Run
from tasks_app.schedules.beat import TaskdeckScheduler, lock_redis_url
from tests.support.services import BeatProcess, WorkerProcess, beats_sharing_a_lock, wait_for

pytestmark = pytest.mark.processes  # starts its own processes: not in make test-fast

# Short, so the takeover after a crash fits in a test; the leader renews it every second
# (BeatProcess runs beat with --max-interval 1, and the scheduler ticks at least every third of
# the lock's lifetime).
LOCK_SECONDS = 3
EVERY_SECOND = "beat-lock: every second"
EVERY_FIVE = "beat-lock: every five seconds"

MakeBeat = Callable[..., BeatProcess]


@pytest.fixture
def beats(broker_url: str, tmp_path: Path) -> Iterator[MakeBeat]:
    """Beats that share a lock of this test's own, held LOCK_SECONDS unless told otherwise."""
    with beats_sharing_a_lock(broker_url, tmp_path) as make:

        def with_lock(name: str, lock_seconds: int = LOCK_SECONDS) -> BeatProcess:
            return make(name, TASKDECK_BEAT_LOCK_SECONDS=str(lock_seconds))

        yield with_lock


def start_together(*beats: BeatProcess) -> tuple[BeatProcess, list[BeatProcess]]:
    """Start the beats at the same moment; return the one that leads and the others."""
    for beat in beats:
        beat.launch()
    for beat in beats:
        beat.wait_ready()
    leaders = [beat for beat in beats if beat.is_leading()]
    logs = "\n\n".join(beat.log_tail() for beat in beats)
    assert len(leaders) == 1, f"{len(leaders)} beats lead:\n{logs}"
    others = [beat for beat in beats if beat is not leaders[0]]
    assert all(beat.is_standing_by() for beat in others), logs
    return leaders[0], others


def schedule_ping(name: str, every: int) -> None:
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=every, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.create(name=name, task="taskdeck.ping", interval=interval)


def fired(schedule: str, after: datetime | None = None) -> list[datetime]:
    """When beat sent each run of `schedule` (the ledger records a run as it is queued)."""
    runs = Run.objects.filter(schedule_name=schedule)
    if after is not None:
        runs = runs.filter(queued_at__gt=after)
    return list(runs.order_by("queued_at").values_list("queued_at", flat=True))


def gaps(times: list[datetime]) -> list[float]:
    return [round((later - earlier).total_seconds(), 2) for earlier, later in pairwise(times)]


def sent_by(beat: BeatProcess, schedule: str) -> int:
    return beat.log_text().count(f"Sending due task {schedule} ")


def test_two_beats_fire_a_schedule_once_not_twice(worker: WorkerProcess, beats: MakeBeat) -> None:
    schedule_ping(EVERY_SECOND, every=1)
    leader, (standby,) = start_together(beats("first"), beats("second"))

    start = timezone.now()
    window = 8
    time.sleep(window)
    runs = fired(EVERY_SECOND, after=start)

    # Once a second: two beats would send about twice as many, in pairs.
    assert window - 2 <= len(runs) <= window + 2, (gaps(runs), leader.log_tail())
    assert min(gaps(fired(EVERY_SECOND))) >= 0.5, gaps(fired(EVERY_SECOND))
    # One beat sent them all, though the lock (3 s) expired twice over in the window: the
    # leader kept renewing it, and the other never led.
    assert sent_by(leader, EVERY_SECOND) >= len(runs)
    assert sent_by(standby, EVERY_SECOND) == 0, standby.log_tail()
    assert not standby.is_leading(), standby.log_tail()


def test_a_standby_takes_over_from_a_killed_leader_and_fires_nothing_twice(
    worker: WorkerProcess, beats: MakeBeat
) -> None:
    schedule_ping(EVERY_SECOND, every=1)
    schedule_ping(EVERY_FIVE, every=5)
    leader, (standby,) = start_together(beats("first"), beats("second"))
    ready = timezone.now()

    # Kill the leader just after it sends the five-second schedule (and records that in the
    # row, as it does after every send). The standby read its copy of the schedule when it
    # started, before that send: were it to fire from that copy, the schedule would go again
    # as soon as it took over, instead of five seconds after the last run.
    last = wait_for(lambda: fired(EVERY_FIVE, after=ready), timeout=15)[-1]
    wait_for(
        lambda: PeriodicTask.objects.filter(
            name=EVERY_FIVE, last_run_at__gte=last - timedelta(seconds=1)
        ).exists(),
        timeout=5,
    )
    leader.kill()
    killed_at, killed = time.monotonic(), timezone.now()

    wait_for(standby.is_leading, timeout=LOCK_SECONDS + 10, interval=0.05)
    takeover = time.monotonic() - killed_at
    # It waited for the lock to expire (the leader had renewed it within the last second)...
    assert 1 <= takeover <= LOCK_SECONDS + 2, (takeover, standby.log_tail())
    # ...then fired the five-second schedule on time, not at once, and the other as before.
    wait_for(lambda: fired(EVERY_FIVE, after=killed), timeout=10)
    time.sleep(1.5)

    five, each_second = fired(EVERY_FIVE), fired(EVERY_SECOND)
    assert min(gaps(five)) >= 4.5, (gaps(five), standby.log_tail())
    assert min(gaps(each_second)) >= 0.5, gaps(each_second)
    assert len(fired(EVERY_SECOND, after=killed)) >= 2, standby.log_tail()
    assert sent_by(standby, EVERY_FIVE) == 1, standby.log_tail()


def test_a_leader_that_stops_releases_the_lock_and_the_standby_takes_over_at_once(
    worker: WorkerProcess, beats: MakeBeat
) -> None:
    schedule_ping(EVERY_SECOND, every=1)
    # A long lock: only a released lock lets the standby take over within the test.
    lock_seconds = 30
    leader, (standby,) = start_together(
        beats("first", lock_seconds=lock_seconds), beats("second", lock_seconds=lock_seconds)
    )
    wait_for(lambda: len(fired(EVERY_SECOND)) >= 2, timeout=10)

    leader.stop()
    stopped_at, stopped = time.monotonic(), timezone.now()
    wait_for(standby.is_leading, timeout=10, interval=0.05)
    takeover = time.monotonic() - stopped_at

    assert takeover < 5, (takeover, standby.log_tail())
    assert "released" in leader.log_text(), leader.log_tail()
    wait_for(lambda: len(fired(EVERY_SECOND, after=stopped)) >= 2, timeout=10)
    assert min(gaps(fired(EVERY_SECOND))) >= 0.5, gaps(fired(EVERY_SECOND))


def test_without_redis_beat_sends_nothing_and_keeps_running(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """No lock, no sending, and no crash: beat keeps asking. (This test has no database: any
    look at the schedule, as sending would need, would fail it.)"""
    # Closing the scheduler closes the database connection if one is open; an earlier test in
    # this process may have left one (CONN_MAX_AGE), and closing it would need the database.
    connections.close_all()
    app = Celery(
        "redis-down", broker=f"redis+socket://{tmp_path / 'no-redis.sock'}", set_as_current=False
    )
    scheduler = TaskdeckScheduler(app=app, lazy=True, max_interval=1)
    caplog.set_level(logging.INFO, logger="tasks_app.schedules.beat")
    try:
        waits = [scheduler.tick() for _ in range(3)]
    finally:
        scheduler.close()

    assert all(0 < wait <= 1 for wait in waits), waits
    warnings = [r for r in caplog.records if "Redis does not answer" in r.getMessage()]
    assert len(warnings) == 1  # said once, not at every tick


@pytest.mark.parametrize(
    ("broker_url", "expected"),
    [
        ("redis://redis:6379/0", "redis://redis:6379/0"),
        ("rediss://:secret@redis.example:6380/2", "rediss://:secret@redis.example:6380/2"),
        ("redis+socket:///srv/redis/redis.sock", "unix:///srv/redis/redis.sock"),
        ("redis://one:6379/0;redis://two:6379/0", "redis://one:6379/0"),
    ],
)
def test_the_lock_lives_in_the_brokers_redis(broker_url: str, expected: str) -> None:
    assert lock_redis_url(broker_url) == expected


def test_a_broker_other_than_redis_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match="not a Redis URL"):
        lock_redis_url("amqp://guest@rabbit//")
