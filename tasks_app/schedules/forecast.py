"""When beat will fire a schedule next, by beat's own rules, for a stored row or one being
edited (so the editor can preview it before saving)."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from celery.schedules import crontab_parser
from django_celery_beat.models import PeriodicTask

from .cron import CronExpression, FireTime, dst_note, next_fire_times
from .rows import definition_of
from .values import Kind, ScheduleDefinition, zone_or_default

__all__ = ["Upcoming", "Window", "count_cron_fires", "forecast", "upcoming", "upcoming_until"]


@dataclass(frozen=True)
class Upcoming:
    """The next fire times of a schedule (in its zone), or why there are none."""

    times: list[FireTime]
    note: str = ""  # a daylight-saving change among them, or why nothing is coming


def upcoming(task: PeriodicTask, *, count: int = 5, now: datetime | None = None) -> Upcoming:
    """When beat will fire a stored schedule next."""
    return forecast(
        definition_of(task),
        last_run_at=task.last_run_at,
        ran=task.total_run_count > 0,
        changed_at=task.date_changed,
        count=count,
        now=now,
    )


def forecast(
    definition: ScheduleDefinition,
    *,
    last_run_at: datetime | None = None,
    ran: bool = False,
    changed_at: datetime | None = None,
    count: int = 5,
    now: datetime | None = None,
) -> Upcoming:
    """The next fire times by beat's own rules (start time, expiry, run once); for a schedule
    being edited, leave the history out: it counts from now, as beat does for a fresh row."""
    now = now or datetime.now(UTC)
    if not definition.enabled:
        return Upcoming([], "Paused.")
    one_off = definition.one_off or definition.timing.kind is Kind.ONE_OFF
    if one_off and ran:
        return Upcoming([], "Ran once; it will not fire again.")
    timing = definition.timing
    zone = zone_or_default(timing.timezone)
    start = definition.start_time
    earliest = max(now, start) if start else now
    times: list[FireTime]
    if timing.kind is Kind.CRONTAB:
        # A start time counts from the second before it: a fire exactly at the start is due.
        after = earliest - timedelta(seconds=1) if earliest > now else now
        times = next_fire_times(timing.expression(), timing.timezone, count=count, after=after)
    elif timing.kind is Kind.INTERVAL:
        if last_run_at is not None:
            first = last_run_at + timing.step()
        elif start is not None and (start > now or changed_at is not None):
            # Beat fires a stored row with a start time and no last run at that time. (One
            # being saved with a past start counts from now: see `rows.fresh_last_run`.)
            first = start
        else:
            first = (changed_at or now) + timing.step()
        times = _interval_times(first, timing.step(), earliest, zone, count)
    elif timing.kind is Kind.ONE_OFF and timing.run_at is not None:
        times = [FireTime(max(timing.run_at, earliest).astimezone(zone), utc_offset_changed=False)]
    else:
        return Upcoming([], "")
    if one_off:
        times = times[:1]
    if definition.expires is not None:
        expires = definition.expires
        times = [t for t in times if t.at < expires]
        if not times:
            return Upcoming([], "Expired." if expires <= now else "Expires before it fires.")
    return Upcoming(times, dst_note(times))


def _interval_times(
    first: datetime, step: timedelta, earliest: datetime, zone: Any, count: int
) -> list[FireTime]:
    if first < earliest:
        first += step * ((earliest - first) // step)
        if first < earliest:
            first = earliest  # overdue: beat sends it at its next tick
    times: list[FireTime] = []
    for n in range(count):
        at = (first + step * n).astimezone(zone)
        changed = bool(times) and at.utcoffset() != times[-1].at.utcoffset()
        times.append(FireTime(at, utc_offset_changed=changed))
    return times


@dataclass(frozen=True)
class Window:
    """The fire times of a schedule up to a moment: the first `cap` of them (`times`), how many
    more follow within the window (`more`), and the forecast's note."""

    times: list[FireTime]
    more: int = 0
    note: str = ""

    @property
    def total(self) -> int:
        return len(self.times) + self.more


def upcoming_until(
    task: PeriodicTask, *, until: datetime, cap: int, now: datetime | None = None
) -> Window:
    """When beat will fire a stored schedule from now up to `until` (inclusive): the same
    forecast as `upcoming` (and the editor's preview), at most `cap` times listed and the rest
    counted without listing them, so an every-second schedule costs a sum, not 604,800 times."""
    definition = definition_of(task)
    coming = forecast(
        definition,
        last_run_at=task.last_run_at,
        ran=task.total_run_count > 0,
        changed_at=task.date_changed,
        count=cap + 1,
        now=now,
    )
    times = [t for t in coming.times if t.at <= until]
    if len(times) <= cap:
        return Window(times, 0, coming.note)
    times = times[:cap]
    last = times[-1].at
    bound = until
    if definition.expires is not None:
        bound = min(bound, definition.expires - timedelta(microseconds=1))
    timing = definition.timing
    if timing.kind is Kind.CRONTAB:
        more = count_cron_fires(timing.expression(), timing.timezone, after=last, until=bound)
    else:  # an interval: `_interval_times` steps evenly from the first time
        more = max(0, (bound - last) // timing.step()) if timing.step() else 0
    return Window(times, more, coming.note)


def count_cron_fires(expr: CronExpression, tz: str, *, after: datetime, until: datetime) -> int:
    """How many times `expr` fires in zone `tz` after `after` up to `until` (inclusive), as
    `next_fire_times` would list them, without listing them: a day whose UTC offset does not
    change is counted from the expanded fields; a day with a clock change is stepped through
    by `next_fire_times` itself, so Celery's daylight-saving rules hold there too."""
    if until <= after:
        return 0
    zone = zone_or_default(tz)
    minutes = _expand(expr.minute, 60, 0)
    hours = _expand(expr.hour, 24, 0)
    days = _expand(expr.day_of_month, 31, 1)
    months = _expand(expr.month_of_year, 12, 1)
    weekdays = _expand(expr.day_of_week, 7, 0)
    of_day = sorted(h * 60 + m for h in hours for m in minutes)  # minutes after midnight
    total = 0
    day = after.astimezone(zone).date()
    last_day = until.astimezone(zone).date()
    while day <= last_day:
        matches = (
            day.day in days and day.month in months and day.isoweekday() % 7 in weekdays
        )  # Celery: day of month AND day of week (Sunday is 0)
        if matches:
            start = datetime.combine(day, time(), zone)
            end = datetime.combine(day + timedelta(days=1), time(), zone)
            if end - start == timedelta(days=1) and start.utcoffset() == end.utcoffset():
                total += _count_plain_day(of_day, start, after, until)
            else:
                # From just before midnight (fires are on the minute) to just before the next.
                low = after if after >= start else start - timedelta(seconds=1)
                high = until if until < end else end - timedelta(microseconds=1)
                total += _count_by_stepping(expr, tz, low, high)
        day += timedelta(days=1)
    return total


def _expand(text: str, size: int, low: int) -> set[int]:
    """A checked cron field as Celery expands it."""
    return crontab_parser(size, low).parse(text.lower())


def _count_plain_day(of_day: list[int], start: datetime, after: datetime, until: datetime) -> int:
    """Fires on a day without a clock change: wall minutes in (after, until]."""
    low = (after - start).total_seconds()  # seconds after midnight, exclusive
    high = (until - start).total_seconds()  # inclusive
    first = bisect_right(of_day, low / 60) if low >= 0 else 0
    last = bisect_right(of_day, high / 60)
    return max(0, last - first)


def _count_by_stepping(expr: CronExpression, tz: str, after: datetime, until: datetime) -> int:
    count = 0
    while True:
        batch = next_fire_times(expr, tz, count=240, after=after)
        for fire in batch:
            if fire.at > until:
                return count
            count += 1
        after = batch[-1].at
