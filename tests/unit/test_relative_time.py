"""Relative times ("3 min ago", "in 2 h") with the absolute time on hover, and the short lengths
of time the numbers use ("≈ 250 ms"): the template filters, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.test import override_settings
from django.utils import timezone

from tasks_app.charts import seconds_label
from tasks_app.templatetags.taskdeck import approx, relative_time, when

NOW = datetime(2026, 12, 5, 14, 3, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(0), "just now"),
        (timedelta(milliseconds=999), "just now"),
        (timedelta(seconds=1), "1 s ago"),
        (timedelta(seconds=59.9), "59 s ago"),
        (timedelta(seconds=60), "1 min ago"),
        (timedelta(minutes=3, seconds=59), "3 min ago"),
        (timedelta(minutes=59, seconds=59), "59 min ago"),
        (timedelta(hours=1), "1 h ago"),
        (timedelta(hours=23, minutes=59), "23 h ago"),
        (timedelta(days=1), "1 d ago"),
        (timedelta(days=400), "400 d ago"),
    ],
)
def test_past_times_in_their_largest_whole_unit(offset: timedelta, expected: str) -> None:
    assert relative_time(NOW - offset, NOW) == expected


@pytest.mark.parametrize(
    ("offset", "expected"),
    [
        (timedelta(milliseconds=500), "just now"),
        (timedelta(seconds=5), "in 5 s"),
        (timedelta(minutes=3), "in 3 min"),
        (timedelta(hours=2, minutes=30), "in 2 h"),
        (timedelta(days=2, hours=1), "in 2 d"),
    ],
)
def test_future_times_say_in(offset: timedelta, expected: str) -> None:
    assert relative_time(NOW + offset, NOW) == expected


def test_zones_do_not_change_how_long_ago() -> None:
    berlin = NOW.astimezone(ZoneInfo("Europe/Berlin")) - timedelta(minutes=3)
    assert relative_time(berlin, NOW) == "3 min ago"


def test_when_is_a_time_element_with_the_absolute_time_on_hover() -> None:
    moment = timezone.now() - timedelta(minutes=3, seconds=5)
    with override_settings(TIME_ZONE="UTC"):
        html = when(moment)
    local = moment.astimezone(UTC)
    assert html == (
        f'<time datetime="{local.isoformat()}" title="{local:%Y-%m-%d %H:%M:%S} UTC">'
        "3 min ago</time>"
    )


def test_when_shows_the_absolute_time_in_the_current_zone() -> None:
    moment = timezone.now() + timedelta(hours=2, minutes=1)
    with override_settings(TIME_ZONE="Asia/Kolkata"):
        html = when(moment)
    local = moment.astimezone(ZoneInfo("Asia/Kolkata"))
    assert f'datetime="{moment.astimezone(UTC).isoformat()}"' in html  # the instant, in UTC
    assert f'title="{local:%Y-%m-%d %H:%M:%S} IST"' in html
    assert html.endswith(">in 2 h</time>")


def test_when_of_nothing_is_empty() -> None:
    assert when(None) == ""


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.0, "0 ms"), (0.0049, "4.9 ms"), (0.025, "25 ms"), (0.375, "375 ms"), (1.0, "1 s"),
        (2.25, "2.2 s"), (8.75, "8.8 s"), (59.0, "59 s"), (90.0, "1.5 min"), (210.0, "3.5 min"),
        (1800.0, "30 min"), (3600.0, "1 h"), (21600.0, "6 h"), (86400.0, "1 d"),
        (30 * 86400.0, "30 d"),
    ],
)  # fmt: skip
def test_lengths_of_time_in_one_unit(seconds: float, expected: str) -> None:
    assert seconds_label(seconds) == expected


def test_estimates_are_marked_and_nothing_is_a_dash() -> None:
    assert approx(2.25) == "≈ 2.2 s"
    assert approx(None) == "—"
