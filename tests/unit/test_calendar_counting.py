"""Counting a crontab's fires without listing them agrees with listing them by Celery's own
steps, across daylight-saving changes either way and in zones with odd offsets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks_app.schedules.cron import CronExpression, next_fire_times, parse_cron
from tasks_app.schedules.forecast import count_cron_fires

STARTS = [
    datetime(2026, 3, 27, 13, 17, 42, tzinfo=UTC),  # spring forward in Europe (29 Mar)
    datetime(2026, 10, 24, 22, 0, tzinfo=UTC),  # fall back in Europe (25 Oct)
    datetime(2026, 11, 1, 0, 0, tzinfo=UTC),  # fall back in New York (1 Nov)
    datetime(2026, 4, 4, 10, 0, tzinfo=UTC),  # Lord Howe: back half an hour (5 Apr)
]


@pytest.mark.parametrize(
    "cron",
    ["* * * * *", "*/30 * * * *", "30 2 * * *", "0 * * * *", "15,45 1-3 * * *",
     "0 0 * * *", "*/7 */2 1-7 * 0", "59 23 * * *", "0 9 * * mon-fri"],
)  # fmt: skip
@pytest.mark.parametrize(
    "zone", ["Europe/Berlin", "America/New_York", "UTC", "Australia/Lord_Howe"]
)
def test_the_count_is_the_length_of_the_listed_fires(cron: str, zone: str) -> None:
    expr = parse_cron(cron)
    for start in STARTS:
        until = start + timedelta(days=7)
        listed = listed_until(expr, zone, start, until)
        for end in (start + timedelta(days=1), until):
            expected = sum(1 for at in listed if at <= end)
            assert count_cron_fires(expr, zone, after=start, until=end) == expected, (start, end)


def listed_until(
    expr: CronExpression, zone: str, after: datetime, until: datetime
) -> list[datetime]:
    times: list[datetime] = []
    while not times or times[-1] <= until:
        batch = next_fire_times(expr, zone, count=500, after=times[-1] if times else after)
        times += [f.at for f in batch]
    return times


def test_the_bounds_are_after_exclusive_until_inclusive() -> None:
    expr = parse_cron("0 * * * *")
    at = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert count_cron_fires(expr, "UTC", after=at, until=at + timedelta(hours=2)) == 2
    assert count_cron_fires(expr, "UTC", after=at - timedelta(seconds=1), until=at) == 1
    assert count_cron_fires(expr, "UTC", after=at, until=at) == 0
