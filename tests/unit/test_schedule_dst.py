"""Daylight saving, end to end through beat's own code: django-celery-beat's real ``ModelEntry``
for a real (unsaved) ``PeriodicTask`` on a ``CrontabSchedule``, driven by a frozen real clock
(time-machine patches ``datetime.now``, so Celery and django-celery-beat read it too).

The clock runs from local noon three days before each 2026 switch to local noon three days
after it, a minute at a time (beat polls at least every 5 s; a crontab has minute resolution);
whenever ``is_due()`` says due, the fire is recorded and the entry is replaced by
``next(entry)``, as ``DatabaseScheduler.reserve`` does. That run also checks that every
``is_due()`` names the next fire exactly, which licenses a second, cheaper run: on an app whose
timezone is the schedule's own, jumping the clock straight to each time ``is_due()`` names.

Every local day must see exactly one fire, at the schedule's wall time, except where
``tasks_app.schedules.cron`` documents otherwise (02:30 Berlin on 29 Mar 2026 fires at 03:30
CEST), and the dashboard's ``next_fire_times`` must list the very same instants. No database:
nothing is saved.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache
from zoneinfo import ZoneInfo

import pytest
import time_machine
from celery import Celery
from celery._state import get_current_app
from django_celery_beat.models import CrontabSchedule, PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from dashboard.celery import app as project_app
from tasks_app.schedules.cron import next_fire_times, parse_cron

STEP = timedelta(minutes=1)


@dataclass(frozen=True)
class Switch:
    """One 2026 clock change and the daily schedule watched across it."""

    cron: str
    zone: str
    day: date
    wall_time: time
    # (day, wall time) where beat documentedly fires at another time (cron.py's docstring).
    shifted: tuple[tuple[date, time], ...] = ()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def start(self) -> datetime:
        """Local noon three days before: past the day's fire time, so that day does not fire."""
        return datetime.combine(self.day - timedelta(days=3), time(12), tzinfo=self.tz)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.day + timedelta(days=3), time(12), tzinfo=self.tz)

    @property
    def fire_days(self) -> list[date]:
        """Every local day after the start's, up to and including the end's."""
        return [self.day + timedelta(days=n) for n in range(-2, 4)]

    def wall_time_on(self, day: date) -> time:
        return dict(self.shifted).get(day, self.wall_time)


BERLIN_SPRING = Switch(
    "30 2 * * *",
    "Europe/Berlin",
    date(2026, 3, 29),
    time(2, 30),
    ((date(2026, 3, 29), time(3, 30)),),
)
BERLIN_AUTUMN = Switch("30 2 * * *", "Europe/Berlin", date(2026, 10, 25), time(2, 30))
NEW_YORK_SPRING = Switch("0 9 * * *", "America/New_York", date(2026, 3, 8), time(9, 0))
NEW_YORK_AUTUMN = Switch("0 9 * * *", "America/New_York", date(2026, 11, 1), time(9, 0))
SWITCHES = [BERLIN_SPRING, BERLIN_AUTUMN, NEW_YORK_SPRING, NEW_YORK_AUTUMN]
SWITCH_IDS = ["berlin-spring", "berlin-autumn", "new-york-spring", "new-york-autumn"]


@dataclass(frozen=True)
class BeatRun:
    fires: tuple[datetime, ...]  # the UTC instants at which is_due() said due
    # (clock, clock + is_due().next): beat's own estimate, at each check, of the next fire.
    estimates: tuple[tuple[datetime, datetime], ...]


@dataclass(frozen=True)
class Beat:
    """How beat is run: on which app, and how the frozen clock moves."""

    app_in_schedule_zone: bool  # else the project's app (its timezone from settings)
    jump: bool  # to is_due()'s next-check time, else a minute at a time


BEATS = [Beat(app_in_schedule_zone=False, jump=False), Beat(app_in_schedule_zone=True, jump=True)]
BEAT_IDS = ["settings-app-minute-steps", "schedule-zone-app-jumps"]


@contextmanager
def _current_app(app: Celery) -> Iterator[Celery]:
    """``ModelEntry.__next__`` builds the new entry on the *current* app (it drops ``app``), and
    the crontab reads its settings from it: make ``app`` current for the run, then restore."""
    previous = get_current_app()
    app.set_current()
    try:
        yield app
    finally:
        previous.set_current()


@contextmanager
def _beat_app(in_schedule_zone: str | None) -> Iterator[Celery]:
    """The project's app (its timezone from settings: UTC in tests), or a bare app whose
    timezone is ``in_schedule_zone``: beat's result must not depend on the app's timezone."""
    if in_schedule_zone is None:
        with _current_app(project_app) as app:
            yield app
        return
    other = Celery("dst-test", set_as_current=False)
    other.conf.update(timezone=in_schedule_zone)
    try:
        with _current_app(other) as app:
            yield app
    finally:
        other.close()


@cache  # one run per switch and beat: the tests below read the same run
def _beat_run(switch: Switch, beat: Beat) -> BeatRun:
    with _beat_app(switch.zone if beat.app_in_schedule_zone else None) as app:
        return _drive_beat(app, switch, jump=beat.jump)


def _last_run(entry: ModelEntry) -> datetime:
    last_run_at: datetime | None = entry.last_run_at
    assert last_run_at is not None
    return last_run_at


def _drive_beat(app: Celery, switch: Switch, *, jump: bool) -> BeatRun:
    minute, hour, day_of_month, month_of_year, day_of_week = switch.cron.split()
    crontab = CrontabSchedule(
        minute=minute,
        hour=hour,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        day_of_week=day_of_week,
        timezone=switch.tz,
    )
    task = PeriodicTask(name=f"dst {switch.zone}", task="taskdeck.dst_probe", crontab=crontab)
    fires: list[datetime] = []
    estimates: list[tuple[datetime, datetime]] = []
    start, end = switch.start.astimezone(UTC), switch.end.astimezone(UTC)
    with time_machine.travel(start, tick=False) as clock:
        # A new task: beat takes "now" (the frozen clock, in the app's zone) as its last run.
        entry = ModelEntry(task, app=app)  # type: ignore[no-untyped-call]
        assert _last_run(entry).astimezone(UTC) == start
        assert _last_run(entry).tzinfo == app.timezone
        now, step = start, STEP
        while now < end:
            now = min(now + step, end)
            clock.move_to(now)
            # Frozen, whatever zone it is read in (compared in UTC: PEP 495 never equates an
            # ambiguous wall time with another zone's).
            assert datetime.now(switch.tz).astimezone(UTC) == datetime.now(UTC) == now
            due, next_check = entry.is_due()  # type: ignore[no-untyped-call]
            estimates.append((now, now + timedelta(seconds=next_check)))
            if jump:
                step = timedelta(seconds=next_check)
                assert step > timedelta(0)
            if due:
                fires.append(datetime.now(UTC))
                count = entry.total_run_count
                entry = next(entry)  # DatabaseScheduler.reserve
                assert entry.app is app
                assert _last_run(entry).astimezone(UTC) == now
                assert entry.total_run_count == count + 1
    return BeatRun(tuple(fires), tuple(estimates))


@pytest.fixture(params=BEATS, ids=BEAT_IDS)
def beat(request: pytest.FixtureRequest) -> Beat:
    value: Beat = request.param
    return value


@pytest.mark.parametrize("switch", SWITCHES, ids=SWITCH_IDS)
def test_beat_fires_once_a_day_at_the_local_time_across_the_switch(
    switch: Switch, beat: Beat
) -> None:
    run = _beat_run(switch, beat)
    local = [fire.astimezone(switch.tz) for fire in run.fires]

    # Exactly one fire per local calendar day: none skipped, none doubled.
    assert [fire.date() for fire in local] == switch.fire_days
    # At the schedule's wall time, but where the documented DST rule moves it.
    assert [fire.time() for fire in local] == [switch.wall_time_on(day) for day in switch.fire_days]
    # The clock did change in between: the UTC offset differs across the switch day.
    offsets = [fire.utcoffset() for fire in local]
    assert offsets[0] != offsets[-1]

    # Every is_due() names the next fire exactly: beat sleeps on it (capped at 5 s).
    for made_at, estimate in run.estimates:
        upcoming = [fire for fire in run.fires if fire > made_at]
        if upcoming:
            assert estimate == upcoming[0], f"estimate at {made_at}"

    # The dashboard's list, computed at the same frozen start, is what beat did.
    with time_machine.travel(switch.start, tick=False):
        shown = next_fire_times(parse_cron(switch.cron), switch.zone, count=len(run.fires))
    assert [t.at.astimezone(UTC) for t in shown] == list(run.fires)
    assert [(t.at.replace(tzinfo=None), t.at.utcoffset()) for t in shown] == [
        (fire.replace(tzinfo=None), fire.utcoffset()) for fire in local
    ]
    # Flagged on the first fire after the change, and on no other.
    flags = [t.utc_offset_changed for t in shown]
    assert flags == [n > 0 and offsets[n] != offsets[n - 1] for n in range(len(offsets))]
    assert flags.count(True) == 1


def test_berlin_spring_forward_fires_the_missing_0230_once_at_0330_cest(
    beat: Beat,
) -> None:
    """02:30 does not exist on 29 Mar 2026 (02:00 CET -> 03:00 CEST). Documented behaviour:
    one fire, at 03:30 CEST = 01:30 UTC, the instant 02:30 CET would have been."""
    fires = _beat_run(BERLIN_SPRING, beat).fires
    on_the_day = [f for f in fires if f.astimezone(BERLIN_SPRING.tz).date() == BERLIN_SPRING.day]
    assert on_the_day == [datetime(2026, 3, 29, 1, 30, tzinfo=UTC)]
    fire = on_the_day[0].astimezone(BERLIN_SPRING.tz)
    assert (fire.hour, fire.minute, fire.utcoffset()) == (3, 30, timedelta(hours=2))
    assert fire == datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=1)))  # 02:30 CET
    # From 02:30 CET the day before, 24 hours; to 02:30 CEST the day after, 23 hours.
    index = fires.index(on_the_day[0])
    assert fires[index] - fires[index - 1] == timedelta(hours=24)
    assert fires[index + 1] - fires[index] == timedelta(hours=23)


def test_berlin_fall_back_fires_the_repeated_0230_once_at_its_first_occurrence(
    beat: Beat,
) -> None:
    """02:30 happens twice on 25 Oct 2026 (03:00 CEST -> 02:00 CET): one fire, at the first
    (CEST, UTC+2, fold=0) occurrence, 00:30 UTC; none at the second (CET) one, 01:30 UTC."""
    fires = _beat_run(BERLIN_AUTUMN, beat).fires
    on_the_day = [f for f in fires if f.astimezone(BERLIN_AUTUMN.tz).date() == BERLIN_AUTUMN.day]
    assert on_the_day == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]
    fire = on_the_day[0].astimezone(BERLIN_AUTUMN.tz)
    assert (fire.hour, fire.minute, fire.fold, fire.utcoffset()) == (2, 30, 0, timedelta(hours=2))
    assert datetime(2026, 10, 25, 1, 30, tzinfo=UTC) not in fires
    index = fires.index(on_the_day[0])
    assert fires[index] - fires[index - 1] == timedelta(hours=24)
    assert fires[index + 1] - fires[index] == timedelta(hours=25)
