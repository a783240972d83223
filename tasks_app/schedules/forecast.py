"""When beat will fire a schedule next, by beat's own rules, for a stored row or one being
edited (so the editor can preview it before saving)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django_celery_beat.models import PeriodicTask

from .cron import FireTime, dst_note, next_fire_times
from .rows import definition_of
from .values import Kind, ScheduleDefinition, zone_or_default

__all__ = ["Upcoming", "forecast", "upcoming"]


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
