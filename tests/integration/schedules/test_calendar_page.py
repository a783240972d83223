"""The schedule calendar: every enabled schedule's fire times in the next 24 hours or 7 days,
from the editor's own forecast, grouped by UTC day and hour, each time in its schedule's zone
and in UTC; bounded however often a schedule fires."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask, SolarSchedule

from tasks_app import services
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing, upcoming
from tasks_app.selectors.calendar_timeline import (
    CAP,
    DENSE_LISTED,
    MAX_LISTED,
    calendar_days,
    schedule_calendar,
)
from tasks_app.services import Actor

pytestmark = pytest.mark.django_db

# Two days before Europe's clocks go forward (29 Mar 2026, 02:00 CET -> 03:00 CEST).
BEFORE_SPRING = datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
ENTRY = re.compile(r'<li class="calendar-entry"><a href="/schedules/(\d+)/">([^<]+)</a>')


@pytest.fixture
def boss_user() -> User:
    return User.objects.create_superuser("boss", password="x-Secret-123")


@pytest.fixture
def boss(client: Client, boss_user: User) -> Client:
    client.force_login(boss_user)
    return client


def save(name: str, timing: Timing, boss_user: User, **fields: object) -> PeriodicTask:
    definition = ScheduleDefinition(
        name=name,
        job="demo.progress",
        timing=timing,
        params={"steps": 1},
        **fields,  # type: ignore[arg-type]
    )
    return services.schedule_save(definition, actor=Actor(user=boss_user))


def only_ours(tasks: list[str]) -> None:
    """Pause every schedule but `tasks` (the built-in ones would fill the calendar too)."""
    PeriodicTask.objects.exclude(name__in=tasks).update(enabled=False)


def test_the_calendar_is_the_editors_forecast_across_a_clock_change(boss_user: User) -> None:
    with time_machine.travel(BEFORE_SPRING - timedelta(days=1), tick=False):
        task = save(
            "night", Timing(Kind.CRONTAB, cron="30 2 * * *", timezone="Europe/Berlin"), boss_user
        )
    only_ours([task.name])

    calendar = schedule_calendar(7, now=BEFORE_SPRING)

    entries = [e for day in calendar.timeline for hour in day.hours for e in hour.entries]
    forecast = upcoming(PeriodicTask.objects.get(pk=task.pk), count=7, now=BEFORE_SPRING).times
    assert [e.at for e in entries] == [t.at for t in forecast]
    assert [e.at.strftime("%d %H:%M %Z") for e in entries[:3]] == [
        "28 02:30 CET", "29 03:30 CEST", "30 02:30 CEST",
    ]  # fmt: skip
    assert [e.utc_offset_changed for e in entries[:3]] == [False, True, False]
    assert [e.at_utc.strftime("%H:%M") for e in entries[:3]] == ["01:30", "01:30", "00:30"]
    # Grouped by UTC day and hour.
    assert [(d.day.day, [h.start.hour for h in d.hours]) for d in calendar.timeline][:3] == [
        (28, [1]), (29, [1]), (30, [0]),
    ]  # fmt: skip


def test_an_every_second_schedule_is_listed_to_the_cap_and_counted(boss_user: User) -> None:
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.SECONDS)
    task = PeriodicTask.objects.create(name="hammer", task="demo.progress", interval=every)
    hourly = save("hourly", Timing(Kind.CRONTAB, cron="0 * * * *", timezone="UTC"), boss_user)
    only_ours([task.name, hourly.name])
    task.refresh_from_db()
    now = task.date_changed  # the interval counts from its last change: first fire 1 s later

    calendar = schedule_calendar(7, now=now)

    listed = [e for day in calendar.timeline for hour in day.hours for e in hour.entries]
    hammer = [e for e in listed if e.name == "hammer"]
    # More than once every 10 minutes: summarised, its first few times listed.
    assert len(hammer) == DENSE_LISTED
    assert hammer[-1].more == 7 * 86400 - DENSE_LISTED
    assert [e.more for e in hammer[:-1]] == [0] * (DENSE_LISTED - 1)
    assert {(f.name, f.total, f.listed) for f in calendar.frequent} == {
        ("hammer", 7 * 86400, DENSE_LISTED), ("hourly", 7 * 24, CAP),
    }  # fmt: skip
    assert calendar.fires == 7 * 86400 + 7 * 24


def test_the_page_shows_zone_and_utc_links_and_the_window_toggle(
    boss: Client, boss_user: User
) -> None:
    with time_machine.travel(BEFORE_SPRING, tick=False):
        night = save(
            "night <b>",
            Timing(Kind.CRONTAB, cron="30 2 * * *", timezone="Europe/Berlin"),
            boss_user,
        )
        hourly = save(
            "hourly", Timing(Kind.CRONTAB, cron="0 * * * *", timezone="America/New_York"), boss_user
        )
        paused = save(
            "paused",
            Timing(Kind.CRONTAB, cron="0 * * * *", timezone="UTC"),
            boss_user,
            enabled=False,
        )
        only_ours([night.name, hourly.name, paused.name])

        day = boss.get(reverse("tasks_app:schedules_calendar")).content.decode()
        week = boss.get(reverse("tasks_app:schedules_calendar"), {"days": "7"}).content.decode()

    assert "night &lt;b&gt;" in day
    assert "<b>" not in day.split("<main", 1)[-1]
    names = [name for _, name in ENTRY.findall(day)]
    assert names.count("night &lt;b&gt;") == 1
    assert names.count("hourly") == 24
    assert "paused" not in names
    assert 'href="?days=1" aria-current="page"' in day
    assert "Sat 02:30:00 CET" in day
    assert "01:30:00 UTC" in day
    assert "America/New_York" in day
    week_names = [name for _, name in ENTRY.findall(week)]
    assert week_names.count("night &lt;b&gt;") == 7
    assert week_names.count("hourly") == CAP
    assert f"and {7 * 24 - CAP} more in this window" in week
    assert "⟳ clocks change" in week
    assert 'href="?days=7" aria-current="page"' in week
    assert f'href="/schedules/{night.pk}/"' in week


@pytest.mark.parametrize("junk", ["", "3", "7x", "-1", "%00", "1" * 50, "\u0661"])
def test_any_other_window_reads_as_a_day(boss: Client, junk: str) -> None:
    response = boss.get(reverse("tasks_app:schedules_calendar"), {"days": junk})
    assert response.status_code == 200
    assert 'href="?days=1" aria-current="page"' in response.content.decode()
    assert calendar_days(junk) == 1


def test_schedules_that_cannot_fire_in_the_window_say_why(boss_user: User) -> None:
    solar, _ = SolarSchedule.objects.get_or_create(event="sunrise", latitude=52.5, longitude=13.4)
    sun = PeriodicTask.objects.create(name="sunrise", task="demo.progress", solar=solar)
    with time_machine.travel(BEFORE_SPRING, tick=False):
        later = save(
            "later", Timing(Kind.ONE_OFF, run_at=BEFORE_SPRING + timedelta(days=3)), boss_user
        )
        soon = save(
            "soon", Timing(Kind.ONE_OFF, run_at=BEFORE_SPRING + timedelta(hours=3)), boss_user
        )
    only_ours([sun.name, later.name, soon.name])

    calendar = schedule_calendar(1, now=BEFORE_SPRING)

    assert [e.name for d in calendar.timeline for h in d.hours for e in h.entries] == ["soon"]
    reasons = {u.name: u.reason for u in calendar.unlisted}
    assert set(reasons) == {"sunrise", "later"}
    assert "Not forecast here" in reasons["sunrise"]


def test_the_calendar_costs_the_same_queries_however_many_schedules(
    boss: Client, boss_user: User
) -> None:
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    with CaptureQueriesContext(connection) as few:
        boss.get(reverse("tasks_app:schedules_calendar"), {"days": "7"})
    PeriodicTask.objects.bulk_create(
        PeriodicTask(name=f"many {n}", task="demo.progress", interval=every) for n in range(30)
    )
    with CaptureQueriesContext(connection) as many:
        body = boss.get(reverse("tasks_app:schedules_calendar"), {"days": "7"}).content.decode()
    assert len(many.captured_queries) == len(few.captured_queries)
    assert len(ENTRY.findall(body)) >= 30 * CAP


def test_the_timeline_stops_after_its_bound_and_counts_the_rest(boss: Client) -> None:
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.bulk_create(
        PeriodicTask(name=f"wide {n:03d}", task="demo.progress", interval=every) for n in range(120)
    )
    only_ours([f"wide {n:03d}" for n in range(120)])

    calendar = schedule_calendar(7)

    listed = [e for day in calendar.timeline for hour in day.hours for e in hour.entries]
    assert len(listed) == MAX_LISTED
    assert calendar.cut_entries == 120 * CAP - MAX_LISTED
    assert calendar.cut_at == listed[-1].at_utc
    assert all(e.at_utc <= listed[-1].at_utc for e in listed)
    assert calendar.fires == 120 * 7 * 24
    body = boss.get(reverse("tasks_app:schedules_calendar"), {"days": "7"}).content.decode()
    assert "The timeline stops at" in body
    assert len(ENTRY.findall(body)) == MAX_LISTED
