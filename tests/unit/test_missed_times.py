"""Which fire times a schedule missed, from Celery's own schedule objects (the ones beat asks):
intervals counted in absolute time, crontabs stepped in their zone across daylight-saving
changes exactly as a replay of beat fires them, one-offs, start times, the grace that tells a
late tick from a miss, and what each policy sends. No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import schedule
from django_celery_beat.clockedschedule import clocked
from django_celery_beat.tzcrontab import TzAwareCrontab

from tasks_app.schedules.cron import next_fire_times, parse_cron
from tasks_app.schedules.missed import (
    GRACE,
    SCAN_LIMIT,
    Missed,
    MissedRuns,
    catch_up_label,
    due_times,
    problems,
    to_send,
)

T0 = datetime(2026, 6, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def crontab(text: str, zone: str) -> TzAwareCrontab:
    minute, hour, day_of_month, month_of_year, day_of_week = text.split()
    return TzAwareCrontab(  # type: ignore[no-untyped-call]
        minute=minute,
        hour=hour,
        day_of_week=day_of_week,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        tz=ZoneInfo(zone),
    )


class _ClockedCrontab(TzAwareCrontab):
    """Beat's crontab reading a clock we set."""

    clock: datetime

    def nowfunc(self) -> datetime:
        return self.clock


def beat_replay(text: str, zone: str, since: datetime, until: datetime) -> list[datetime]:
    """What beat fires, ticking every minute from `since` (its last run) to `until`."""
    minute, hour, day_of_month, month_of_year, day_of_week = text.split()
    when = _ClockedCrontab(  # type: ignore[no-untyped-call]
        minute=minute,
        hour=hour,
        day_of_week=day_of_week,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        tz=ZoneInfo(zone),
    )
    fires: list[datetime] = []
    last = now = since
    while now < until:
        now += timedelta(minutes=1)
        when.clock = now
        if when.is_due(last)[0]:  # type: ignore[no-untyped-call]
            fires.append(now)
            last = now
    return fires


def test_an_interval_misses_each_step_after_its_last_run_counted_not_stepped() -> None:
    every_5s = schedule(timedelta(seconds=5))

    missed = due_times(every_5s, T0, T0 + timedelta(seconds=17))
    assert missed == Missed([T0 + timedelta(seconds=s) for s in (5, 10, 15)], 3)
    assert due_times(every_5s, T0, T0 + timedelta(seconds=4)) == Missed([], 0)
    # A week of a one-second schedule: counted exactly, the latest `keep` kept.
    week = due_times(schedule(timedelta(seconds=1)), T0, T0 + timedelta(days=7), keep=3)
    assert week is not None
    assert week.count == 7 * 86400
    assert week.complete
    assert week.times == [T0 + timedelta(days=7, seconds=s) for s in (-2, -1, 0)]


def test_an_interval_counts_in_absolute_time_across_a_dst_change() -> None:
    """Beat adds an interval to the last run in real time: 02:00 to 04:00 Berlin on the night
    the clocks go forward is one hour, so an hourly schedule missed one fire, not two."""
    berlin = ZoneInfo("Europe/Berlin")
    since = datetime(2026, 3, 29, 1, 30, tzinfo=berlin)
    missed = due_times(
        schedule(timedelta(hours=1)), since, datetime(2026, 3, 29, 3, 45, tzinfo=berlin)
    )
    assert missed is not None
    assert missed.count == 1
    assert missed.times == [datetime(2026, 3, 29, 1, 30, tzinfo=UTC)]  # 03:30 CEST


@pytest.mark.parametrize(
    ("text", "zone", "since"),
    [
        ("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 27, 12, tzinfo=UTC)),
        ("30 2 * * *", "Europe/Berlin", datetime(2026, 10, 23, 12, tzinfo=UTC)),
        ("*/20 1-3 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=UTC)),
        ("0 * * * *", "Europe/Berlin", datetime(2026, 10, 24, 20, tzinfo=UTC)),
        ("0 9 * * *", "America/New_York", datetime(2026, 3, 6, 12, tzinfo=UTC)),
        ("30 1 * * 0", "America/New_York", datetime(2026, 10, 30, 12, tzinfo=UTC)),
    ],
)
def test_a_crontab_misses_what_beat_would_have_fired_across_dst(
    text: str, zone: str, since: datetime
) -> None:
    until = since + timedelta(days=3)
    expected = beat_replay(text, zone, since, until)
    assert expected

    missed = due_times(crontab(text, zone), since, until)

    assert missed is not None
    assert missed.times == expected
    assert missed.count == len(expected)
    # The same instants the dashboard forecasts.
    forecast = next_fire_times(parse_cron(text), zone, count=len(expected), after=since)
    assert [t.at.astimezone(UTC) for t in forecast] == expected


def test_a_daily_crontab_keeps_its_wall_time_across_the_change() -> None:
    """09:00 Berlin, missed Sunday to Tuesday as the clocks go back: 07:00 UTC, then 08:00."""
    since = datetime(2026, 10, 24, 7, 0, tzinfo=UTC)  # Saturday 09:00 CEST
    missed = due_times(
        crontab("0 9 * * *", "Europe/Berlin"), since, since + timedelta(days=3, hours=2)
    )
    assert missed is not None
    assert missed.times == [datetime(2026, 10, d, 8, 0, tzinfo=UTC) for d in (25, 26, 27)]


def test_too_many_crontab_fires_to_count_still_give_the_latest() -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    now = datetime(2026, 3, 1, 0, 0, 30, tzinfo=UTC)
    missed = due_times(crontab("* * * * *", "UTC"), since, now, keep=5)
    assert missed is not None
    assert not missed.complete
    assert missed.count == SCAN_LIMIT
    assert missed.in_words() == f"more than {SCAN_LIMIT}"
    assert missed.times == [
        datetime(2026, 3, 1, tzinfo=UTC) - timedelta(minutes=m) for m in (4, 3, 2, 1, 0)
    ]


def test_a_one_off_and_a_start_time() -> None:
    at = T0 + timedelta(minutes=5)
    when = clocked(at)  # type: ignore[no-untyped-call]
    assert due_times(when, T0, T0 + timedelta(minutes=1)) == Missed([], 0)
    assert due_times(when, T0 - timedelta(days=365 * 30), T0 + timedelta(hours=1)) == Missed(
        [at], 1
    )
    # Beat backdates a fresh row with a start time by 30 years: nothing before the start counts.
    start = T0 + timedelta(seconds=30)
    missed = due_times(
        schedule(timedelta(minutes=1)), T0 - timedelta(days=365 * 30), T0 + timedelta(minutes=3),
        not_before=start,
    )  # fmt: skip
    assert missed is not None
    assert missed.times[0] >= start
    assert missed.count == 3


def test_solar_schedules_are_left_to_beat() -> None:
    assert due_times(object(), T0, T0 + timedelta(days=1)) is None


def test_a_late_tick_is_not_a_miss_but_a_long_one_is() -> None:
    now = T0 + timedelta(hours=1)
    assert not Missed([now - GRACE], 1).behind(now)
    assert Missed([now - GRACE - timedelta(seconds=1)], 1).behind(now)
    assert Missed([now - timedelta(seconds=2), now - timedelta(seconds=1)], 2).behind(now)
    assert not Missed([], 0).behind(now)


def test_what_each_policy_sends() -> None:
    times = [T0 + timedelta(minutes=m) for m in range(1, 6)]
    missed = Missed(times, 5)
    assert to_send(missed, MissedRuns("skip", 10), one_off=False) == []
    assert to_send(missed, MissedRuns("run_once", 10), one_off=False) == times[-1:]
    assert to_send(missed, MissedRuns("run_all", 10), one_off=False) == times
    assert to_send(missed, MissedRuns("run_all", 2), one_off=False) == times[-2:]
    # A one-off runs once at most, or not at all under skip.
    assert to_send(missed, MissedRuns("run_all", 10), one_off=True) == times[-1:]
    assert to_send(missed, MissedRuns("skip", 10), one_off=True) == []


def test_labels_and_problems() -> None:
    missed = Missed([T0], 3)
    label = catch_up_label("x" * 250, T0, index=1, total=1, missed=missed)
    assert len(label) <= 255
    assert "catch-up for 3 missed" in label
    assert catch_up_label("nightly", T0, index=2, total=4, missed=missed) == (
        "nightly (catch-up 2/4, due 2026-06-01 12:00:00 UTC)"
    )
    assert problems(MissedRuns("run_all", 1000)) == {}
    assert set(problems(MissedRuns("always", 0))) == {"missed_policy", "missed_cap"}
