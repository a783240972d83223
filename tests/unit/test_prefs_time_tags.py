"""The <time> elements the pages render for the time display: the instant in UTC in `datetime`
(what the page's script re-renders from), a server text that reads correctly without
JavaScript, and the absolute time on hover. Without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.template import Context, Template
from django.test import override_settings

from tasks_app.templatetags.taskdeck import iso_utc, stamp, when

MOMENT = datetime(2026, 12, 5, 14, 3, 12, 250000, tzinfo=UTC)


def test_iso_utc_is_the_instant_in_utc_from_any_zone() -> None:
    berlin = MOMENT.astimezone(ZoneInfo("Europe/Berlin"))
    assert iso_utc(berlin) == "2026-12-05T14:03:12.250000+00:00"
    with override_settings(TIME_ZONE="America/New_York"):
        naive = datetime(2026, 12, 5, 9, 3, 12)  # read in the current zone, as Django does
        assert iso_utc(naive) == "2026-12-05T14:03:12+00:00"


def test_when_carries_utc_whatever_the_current_zone() -> None:
    with override_settings(TIME_ZONE="Asia/Kolkata"):
        html = when(MOMENT - timedelta(days=1))
    assert 'datetime="2026-12-04T14:03:12.250000+00:00"' in html
    assert 'title="2026-12-04 19:33:12 IST"' in html


def test_stamp_shows_the_absolute_time_in_the_current_zone() -> None:
    with override_settings(TIME_ZONE="Europe/Berlin"):
        html = stamp(MOMENT)
    assert html == (
        '<time datetime="2026-12-05T14:03:12.250000+00:00" title="2026-12-05 15:03:12 CET">'
        "2026-12-05 15:03:12 CET</time>"
    )


def test_stamp_takes_stored_iso_strings() -> None:
    with override_settings(TIME_ZONE="UTC"):
        html = stamp("2026-12-05T15:03:12+01:00")
    assert html.startswith('<time datetime="2026-12-05T14:03:12+00:00"')
    assert html.endswith(">2026-12-05 14:03:12 UTC</time>")


def test_stamp_of_nothing_or_junk() -> None:
    assert stamp(None) == ""
    assert stamp("") == ""
    rendered = Template("{% load taskdeck %}{{ value|stamp }}").render(
        Context({"value": "<b>not a time</b>"})
    )
    assert rendered == "&lt;b&gt;not a time&lt;/b&gt;"


def test_time_display_without_a_request_is_the_default() -> None:
    rendered = Template("{% load taskdeck %}{% time_display %}").render(Context({}))
    assert rendered == "relative"
