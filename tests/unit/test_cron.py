"""Cron expressions: parsing with Celery's ranges, descriptions, and fire times that match what
django-celery-beat's scheduler actually does, daylight-saving changes included. No database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery import Celery
from celery.schedules import crontab
from django_celery_beat.tzcrontab import TzAwareCrontab

from tasks_app.schedules.cron import (
    CronError,
    CronExpression,
    FireTime,
    describe,
    dst_note,
    next_fire_times,
    parse_cron,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


# --- parsing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "* * * * *",
        "30 2 * * 1-5",
        "*/15 9-17 * * mon-fri",
        "0 0,12 1,15 * *",
        "5-55/10 */2 1-31/7 */3 *",
        "0 12 1 jan,jul *",
        "0 8 * JAN-Mar Sun",
        "0 8 * * monday,friday",
        "0 0 29 2 *",
        "0 0 31 1-12 *",
        "59 23 31 12 6",
        "00 07 * * 0",
    ],
)
def test_valid_expressions_parse_and_round_trip(text: str) -> None:
    expr = parse_cron(text)
    assert str(expr) == text
    assert parse_cron(str(expr)) == expr


def test_fields_land_in_order_and_extra_whitespace_is_ignored() -> None:
    expr = parse_cron("  30  2 * *\t1-5 ")
    assert expr == CronExpression("30", "2", "*", "*", "1-5")
    assert str(expr) == "30 2 * * 1-5"


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("60 * * * *", "minute", "60 is out of range 0-59"),
        ("* 25 * * *", "hour", "25 is out of range 0-23"),
        ("* * 0 * *", "day_of_month", "0 is out of range 1-31"),
        ("* * 32 * *", "day_of_month", "32 is out of range 1-31"),
        ("* * * 13 *", "month_of_year", "13 is out of range 1-12"),
        ("* * * 0 *", "month_of_year", "0 is out of range 1-12"),
        ("* * * * 7", "day_of_week", "7 is out of range 0-6"),
        ("* * * * funday", "day_of_week", "'funday' is not a number or a known name"),
        ("* * * foo *", "month_of_year", "'foo' is not a number or a known name"),
        ("jan * * * *", "minute", "'jan' is not a number"),
        ("* * * * jan", "day_of_week", "'jan' is not a number or a known name"),
        ("* * * mon *", "month_of_year", "'mon' is not a number or a known name"),
        ("*/0 * * * *", "minute", "at least 1"),
        ("5/15 * * * *", "minute", "a step needs * or a range"),
        ("*/5/3 * * * *", "minute", "is not valid"),
        ("1-5-7 * * * *", "minute", "is not valid"),
        ("* 22-2 * * *", "hour", "runs backwards"),
        ("* * * * fri-mon", "day_of_week", "runs backwards"),
        ("1,,2 * * * *", "minute", "empty item"),
        ("-1 * * * *", "minute", "is not valid"),
        ("*/x * * * *", "minute", "not a number"),
        ("1_0 * * * *", "minute", "is not valid"),
        ("\u0663 * * * *", "minute", "is not valid"),
        ("? * * * *", "minute", "is not valid"),
        ("* * L * *", "day_of_month", "not a number"),
    ],
)
def test_malformed_fields_are_named(text: str, field: str, fragment: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(text)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert fragment in str(caught.value)


def test_hour_message_matches_the_documented_form() -> None:
    with pytest.raises(CronError, match=r"^hour: 25 is out of range 0-23$"):
        parse_cron("0 25 * * *")


@pytest.mark.parametrize("text", ["", "* * * *", "* * * * * *", "@daily", "0 0 * * * 2026"])
def test_wrong_number_of_fields(text: str) -> None:
    with pytest.raises(CronError, match="expected 5 fields") as caught:
        parse_cron(text)
    assert caught.value.field is None


@pytest.mark.parametrize(
    ("text", "months"),
    [
        ("0 0 31 2 *", "February"),
        ("0 0 30 2 *", "February"),
        ("0 0 31 4,6,9,11 *", "April, June, September or November"),
        ("0 0 30,31 feb *", "February"),
    ],
)
def test_impossible_dates_are_refused(text: str, months: str) -> None:
    with pytest.raises(CronError, match="never fires") as caught:
        parse_cron(text)
    assert caught.value.field == "day_of_month"
    assert months in str(caught.value)


def test_celery_agrees_with_what_we_refuse_as_impossible() -> None:
    with pytest.raises(ValueError, match="never occurs"):
        crontab(minute="0", hour="0", day_of_month="31", month_of_year="4,6,9,11")


def test_possible_if_any_month_has_the_day() -> None:
    parse_cron("0 0 31 2,3 *")  # March has a 31st


# --- descriptions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("30 2 * * 1-5", "At 02:30, Monday through Friday"),
        ("30 2 * * mon-fri", "At 02:30, Monday through Friday"),
        ("0 9 * * *", "At 09:00"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("0 12 1 jan,jul *", "At 12:00, on day 1 of the month, only in January and July"),
        ("0 0 1-7 * 1", "At 00:00, between day 1 and 7 of the month, only on Monday"),
    ],
)
def test_describe(text: str, words: str) -> None:
    assert describe(parse_cron(text)) == words


# --- fire times ----------------------------------------------------------------------------


def _at(times: list[FireTime]) -> list[datetime]:
    return [t.at for t in times]


def test_next_fire_times_weekdays() -> None:
    # Friday 2026-06-05 12:00 UTC.
    after = datetime(2026, 6, 5, 12, 0, tzinfo=UTC)
    times = next_fire_times(parse_cron("30 2 * * 1-5"), "UTC", count=3, after=after)
    assert _at(times) == [
        datetime(2026, 6, 8, 2, 30, tzinfo=UTC),
        datetime(2026, 6, 9, 2, 30, tzinfo=UTC),
        datetime(2026, 6, 10, 2, 30, tzinfo=UTC),
    ]
    assert all(isinstance(t.at.tzinfo, ZoneInfo) for t in times)
    assert not any(t.utc_offset_changed for t in times)


def test_next_fire_times_are_strictly_after_and_in_the_zone() -> None:
    after = datetime(2026, 6, 5, 9, 0, tzinfo=NEW_YORK)
    times = next_fire_times(parse_cron("0 9,17 * * *"), "America/New_York", count=3, after=after)
    assert _at(times) == [
        datetime(2026, 6, 5, 17, 0, tzinfo=NEW_YORK),
        datetime(2026, 6, 6, 9, 0, tzinfo=NEW_YORK),
        datetime(2026, 6, 6, 17, 0, tzinfo=NEW_YORK),
    ]
    assert all(t.at.tzinfo == NEW_YORK for t in times)


def test_steps_and_month_end() -> None:
    after = datetime(2026, 1, 29, 12, 0, tzinfo=UTC)
    times = next_fire_times(parse_cron("0 0 29-31 * *"), "UTC", count=5, after=after)
    assert [t.at.date() for t in times] == [
        date(2026, 1, 30),
        date(2026, 1, 31),
        date(2026, 3, 29),  # 2026 is no leap year: no 29 February
        date(2026, 3, 30),
        date(2026, 3, 31),
    ]


def test_leap_day_fires_in_leap_years() -> None:
    after = datetime(2026, 1, 1, tzinfo=UTC)
    times = next_fire_times(parse_cron("0 6 29 2 *"), "UTC", count=2, after=after)
    assert _at(times) == [
        datetime(2028, 2, 29, 6, 0, tzinfo=UTC),
        datetime(2032, 2, 29, 6, 0, tzinfo=UTC),
    ]


def test_day_of_month_and_day_of_week_must_both_match() -> None:
    """Celery ANDs them (Vixie cron would OR): the first Monday of each month."""
    after = datetime(2026, 1, 1, tzinfo=UTC)
    times = next_fire_times(parse_cron("0 0 1-7 * mon"), "UTC", count=4, after=after)
    assert [t.at.date() for t in times] == [
        date(2026, 1, 5),
        date(2026, 2, 2),
        date(2026, 3, 2),
        date(2026, 4, 6),
    ]
    assert all(t.at.weekday() == 0 and t.at.day <= 7 for t in times)


def test_count_and_defaults() -> None:
    expr = parse_cron("* * * * *")
    assert next_fire_times(expr, "UTC", count=0, after=datetime(2026, 1, 1, tzinfo=UTC)) == []
    times = next_fire_times(expr, "Europe/Berlin")
    assert len(times) == 5
    assert times[0].at > datetime.now(UTC)
    with pytest.raises(ValueError, match="negative"):
        next_fire_times(expr, "UTC", count=-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        next_fire_times(expr, "UTC", after=datetime(2026, 1, 1))


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "", "America", "../etc/passwd", "utc "])
def test_unknown_time_zone(tz: str) -> None:
    with pytest.raises(CronError, match=r"^timezone: unknown time zone") as caught:
        next_fire_times(parse_cron("0 0 * * *"), tz)
    assert caught.value.field == "timezone"


# --- daylight saving -----------------------------------------------------------------------


def test_berlin_0230_across_spring_forward() -> None:
    """02:30 does not exist on 29 Mar 2026: Celery fires at 03:30 CEST, the instant 02:30 CET
    would have been (01:30 UTC), once; every other day at 02:30 local."""
    after = datetime(2026, 3, 26, 12, 0, tzinfo=UTC)
    times = next_fire_times(parse_cron("30 2 * * *"), "Europe/Berlin", count=6, after=after)
    assert _at(times) == [
        datetime(2026, 3, 27, 2, 30, tzinfo=BERLIN),
        datetime(2026, 3, 28, 2, 30, tzinfo=BERLIN),
        datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN),
        datetime(2026, 3, 30, 2, 30, tzinfo=BERLIN),
        datetime(2026, 3, 31, 2, 30, tzinfo=BERLIN),
        datetime(2026, 4, 1, 2, 30, tzinfo=BERLIN),
    ]
    assert times[2].at.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert len({t.at.date() for t in times}) == len(times)  # once per local day
    assert [t.utc_offset_changed for t in times] == [False, False, True, False, False, False]
    assert [t.at.utcoffset() for t in times] == [timedelta(hours=1)] * 2 + [timedelta(hours=2)] * 4


def test_berlin_0230_across_fall_back_fires_once() -> None:
    """02:30 happens twice on 25 Oct 2026: Celery fires at the first (CEST) one only."""
    after = datetime(2026, 10, 23, 12, 0, tzinfo=UTC)
    times = next_fire_times(parse_cron("30 2 * * *"), "Europe/Berlin", count=5, after=after)
    local = [(t.at.date(), t.at.hour, t.at.minute) for t in times]
    assert local == [(date(2026, 10, day), 2, 30) for day in range(24, 29)]
    assert times[1].at.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert times[1].at.fold == 0
    assert [t.utc_offset_changed for t in times] == [False, False, True, False, False]


@pytest.mark.parametrize(
    ("after", "switch"),
    [
        (datetime(2026, 3, 5, 12, 0, tzinfo=UTC), date(2026, 3, 8)),
        (datetime(2026, 10, 29, 12, 0, tzinfo=UTC), date(2026, 11, 1)),
    ],
)
def test_new_york_0900_once_a_day_across_switches(after: datetime, switch: date) -> None:
    times = next_fire_times(parse_cron("0 9 * * *"), "America/New_York", count=7, after=after)
    days = [t.at.date() for t in times]
    assert days == [days[0] + timedelta(days=n) for n in range(7)]
    assert switch in days
    assert all((t.at.hour, t.at.minute) == (9, 0) for t in times)
    assert [t.utc_offset_changed for t in times].count(True) == 1
    assert times[days.index(switch)].utc_offset_changed


def test_sub_hourly_schedule_across_both_switches() -> None:
    """Celery's rule for the gap and the repeated hour, shown on a 20-minute schedule."""
    expr = parse_cron("*/20 * * * *")
    spring = next_fire_times(
        expr, "Europe/Berlin", count=3, after=datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    )
    assert _at(spring) == [
        datetime(2026, 3, 29, 1, 40, tzinfo=BERLIN),
        datetime(2026, 3, 29, 3, 0, tzinfo=BERLIN),  # 02:00 shifted by the gap; 02:20, 02:40 drop
        datetime(2026, 3, 29, 3, 20, tzinfo=BERLIN),
    ]
    autumn = next_fire_times(
        expr, "Europe/Berlin", count=4, after=datetime(2026, 10, 25, 0, 0, tzinfo=UTC)
    )
    assert [t.at.astimezone(UTC).strftime("%H:%M") for t in autumn] == [
        "00:20",
        "00:40",
        "02:00",  # 03:00 CET: the repeated 02:00-02:59 (CET) does not fire again
        "02:20",
    ]


def test_dst_note_present_exactly_when_the_offset_changes() -> None:
    expr = parse_cron("30 2 * * *")
    spring = next_fire_times(
        expr, "Europe/Berlin", count=5, after=datetime(2026, 3, 26, 12, tzinfo=UTC)
    )
    assert dst_note(spring) == (
        "A daylight-saving change falls among these: clocks go forward on 29 Mar 2026."
    )
    autumn = next_fire_times(
        expr, "Europe/Berlin", count=5, after=datetime(2026, 10, 23, 12, tzinfo=UTC)
    )
    assert dst_note(autumn) == (
        "A daylight-saving change falls among these: clocks go back on 25 Oct 2026."
    )
    new_york = next_fire_times(
        parse_cron("0 9 * * *"), "America/New_York", count=3, after=datetime(2026, 3, 7, tzinfo=UTC)
    )
    assert dst_note(new_york).endswith("clocks go forward on 8 Mar 2026.")
    # Daily across both switches of a year: monthly schedule from March to November.
    both = next_fire_times(
        parse_cron("0 12 15 * *"), "Europe/Berlin", count=9, after=datetime(2026, 3, 1, tzinfo=UTC)
    )
    assert dst_note(both) == (
        "A daylight-saving change falls among these: "
        "clocks go forward on 29 Mar 2026 and back on 25 Oct 2026."
    )
    quiet = next_fire_times(expr, "Europe/Berlin", count=5, after=datetime(2026, 6, 1, tzinfo=UTC))
    assert dst_note(quiet) == ""
    assert dst_note([]) == ""
    # The change before the first fire time is not among them.
    first_after = next_fire_times(
        expr, "Europe/Berlin", count=3, after=datetime(2026, 3, 29, 12, tzinfo=UTC)
    )
    assert dst_note(first_after) == ""
    assert dst_note(next_fire_times(expr, "UTC")) == ""


# --- agreement with Celery itself ----------------------------------------------------------

AGREEMENT_EXPRESSIONS = [
    "30 2 * * 1-5",
    "*/15 9-17 * * mon-fri",
    "0 0 1 * *",
    "0 12 1 jan,jul *",
    "5 4 * * sun",
    "0 0 1-7 * 1",
    "0 6 29 2 *",
    "59 23 31 * *",
    "0 */6 1,15 */2 *",
]


@pytest.mark.parametrize("text", AGREEMENT_EXPRESSIONS)
@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 31, 23, 59, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        datetime(2026, 7, 4, 16, 20, 30, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 0, tzinfo=UTC),
    ],
)
def test_first_fire_time_agrees_with_celery_crontab(text: str, moment: datetime) -> None:
    """celery.schedules.crontab for a UTC schedule, last run at `moment`, clock at `moment`."""
    app = Celery(set_as_current=False)
    app.conf.update(timezone="UTC")
    minute, hour, day_of_month, month_of_year, day_of_week = text.split()
    schedule = crontab(
        minute=minute,
        hour=hour,
        day_of_week=day_of_week,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        nowfun=lambda: moment,
        app=app,
    )
    celery_first = moment + schedule.remaining_estimate(moment)
    ours = next_fire_times(parse_cron(text), "UTC", count=1, after=moment)
    assert ours[0].at == celery_first


class _ClockedCrontab(TzAwareCrontab):
    """The schedule django-celery-beat builds, reading a clock we set instead of the real one."""

    clock: datetime

    def nowfunc(self) -> datetime:
        return self.clock


def _beat_fires(text: str, tz: str, start: datetime, end: datetime) -> list[datetime]:
    """Replay beat minute by minute: the clock set to each minute, the entry due when
    remaining_estimate(last_run_at) reaches zero, last_run_at then set to that moment."""
    minute, hour, day_of_month, month_of_year, day_of_week = text.split()
    schedule = _ClockedCrontab(  # type: ignore[no-untyped-call]
        minute=minute,
        hour=hour,
        day_of_week=day_of_week,
        day_of_month=day_of_month,
        month_of_year=month_of_year,
        tz=ZoneInfo(tz),
    )
    fires: list[datetime] = []
    last_run_at = start
    now = start
    while now < end:
        now += timedelta(minutes=1)
        schedule.clock = now
        if schedule.remaining_estimate(last_run_at) <= timedelta(0):
            fires.append(now)
            last_run_at = now
    return fires


@pytest.mark.parametrize(
    ("text", "tz", "start"),
    [
        ("30 2 * * *", "Europe/Berlin", datetime(2026, 3, 27, 12, tzinfo=UTC)),
        ("30 2 * * *", "Europe/Berlin", datetime(2026, 10, 23, 12, tzinfo=UTC)),
        ("*/20 1-3 * * *", "Europe/Berlin", datetime(2026, 3, 28, 12, tzinfo=UTC)),
        ("*/20 1-3 * * *", "Europe/Berlin", datetime(2026, 10, 24, 12, tzinfo=UTC)),
        ("0 9 * * *", "America/New_York", datetime(2026, 3, 6, 12, tzinfo=UTC)),
        ("0 9 * * *", "America/New_York", datetime(2026, 10, 30, 12, tzinfo=UTC)),
        ("30 1 * * 0", "America/New_York", datetime(2026, 10, 30, 12, tzinfo=UTC)),
    ],
)
def test_fire_times_match_a_replay_of_beat_across_dst(text: str, tz: str, start: datetime) -> None:
    end = start + timedelta(days=3)
    expected = _beat_fires(text, tz, start, end)
    assert expected
    ours = next_fire_times(parse_cron(text), tz, count=len(expected), after=start)
    # In UTC: aware times in a repeated hour never compare equal across zones (PEP 495).
    assert [t.at.astimezone(UTC) for t in ours] == expected
