"""The schedule calendar: every enabled schedule's fire times in the next day or week, the
same forecast (and the same bounds) as the calendar page."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field

from ..selectors.calendar_timeline import WINDOW_DAYS, schedule_calendar
from .errors import ApiError, responses
from .schemas import In

router = Router(tags=["schedules"])


class CalendarQuery(In):
    days: int = Field(1, description="The window: 1 (24 hours) or 7 (days).")


class CalendarEntryOut(Schema):
    schedule_id: int
    name: str
    at: datetime = Field(description="The fire time in the schedule's zone.")
    at_utc: datetime
    timezone: str
    utc_offset_changed: bool = Field(description="The clocks change before this one.")
    more: int = Field(description="On a schedule's last listed time: fires after it, unlisted.")


class CalendarFrequentOut(Schema):
    schedule_id: int
    name: str
    words: str
    listed: int
    total: int = Field(description="Every fire in the window, listed or not.")


class CalendarUnlistedOut(Schema):
    schedule_id: int
    name: str
    reason: str


class CalendarOut(Schema):
    start: datetime
    end: datetime
    days: int
    fires: int = Field(description="Every fire of every schedule in the window.")
    schedules: int
    schedules_left_out: int
    cap: int = Field(description="The most fire times listed per schedule.")
    cut_at: datetime | None = Field(
        description="Where the entries stop short of `end` (a bound on their number), if they do."
    )
    cut_entries: int = Field(description="Entries left out after `cut_at`.")
    entries: list[CalendarEntryOut] = Field(description="In time order.")
    frequent: list[CalendarFrequentOut]
    unlisted: list[CalendarUnlistedOut]


@router.get(
    "/schedules/calendar",
    response=responses({200: CalendarOut}),
    summary="When the enabled schedules fire in the next day or week",
)
def calendar(request: HttpRequest, query: Query[CalendarQuery]) -> dict[str, Any]:
    """Each schedule lists at most `cap` fire times; `more` and `frequent` count the rest."""
    if query.days not in WINDOW_DAYS:
        raise ApiError(400, "Invalid days.", {"days": ["1 or 7."]})
    found = schedule_calendar(query.days)
    entries = [
        {
            "schedule_id": e.schedule_id,
            "name": e.name,
            "at": e.at,
            "at_utc": e.at_utc,
            "timezone": e.zone,
            "utc_offset_changed": e.utc_offset_changed,
            "more": e.more,
        }
        for day in found.timeline
        for hour in day.hours
        for e in hour.entries
    ]
    return {
        "start": found.start,
        "end": found.end,
        "days": found.days,
        "fires": found.fires,
        "schedules": found.schedules,
        "schedules_left_out": found.schedules_left_out,
        "cap": found.cap,
        "cut_at": found.cut_at,
        "cut_entries": found.cut_entries,
        "entries": entries,
        "frequent": [vars(f) for f in found.frequent],
        "unlisted": [vars(u) for u in found.unlisted],
    }
