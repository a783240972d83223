"""The calendar: when every enabled schedule fires in the next 24 hours or 7 days, by the same
forecast as the editor's preview, grouped by day and hour. Bounded: each schedule lists at
most `CAP` times and the rest are counted, so an every-second schedule is a line, not 604,800."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django_celery_beat.models import PeriodicTask

from ..schedules.cron import CronError
from ..schedules.definition import Kind, Timing, timing_of
from ..schedules.forecast import Window, upcoming_until

WINDOW_DAYS = (1, 7)
CAP = 24  # fire times listed per schedule; the rest are counted
# A schedule firing more than once every 10 minutes on average over the window is summarised:
# its first few times listed, not a screenful of them in its first minutes.
DENSE_MINUTES = 10
DENSE_LISTED = 3
MAX_SCHEDULES = 500  # schedules forecast per page, by name; the rest are counted
# The timeline stops after this many entries (the earliest), so the page stays small however
# many schedules there are; the rest are counted.
MAX_LISTED = 1000


@dataclass(frozen=True)
class CalendarEntry:
    """One fire time of one schedule; `at` is in the schedule's zone. On a schedule's last
    listed entry, `more` counts the fires after it within the window."""

    schedule_id: int
    name: str
    zone: str
    at: datetime
    utc_offset_changed: bool = False
    more: int = 0

    @property
    def at_utc(self) -> datetime:
        return self.at.astimezone(UTC)


@dataclass(frozen=True)
class CalendarHour:
    start: datetime  # UTC
    entries: list[CalendarEntry]


@dataclass(frozen=True)
class CalendarDay:
    day: date  # UTC
    hours: list[CalendarHour]

    @property
    def count(self) -> int:
        return sum(len(hour.entries) for hour in self.hours)


@dataclass(frozen=True)
class FrequentSchedule:
    """A schedule firing more often than the calendar lists: its total in the window."""

    schedule_id: int
    name: str
    words: str
    listed: int
    total: int


@dataclass(frozen=True)
class Unlisted:
    """An enabled schedule with no fire times in the window, and why."""

    schedule_id: int
    name: str
    reason: str


@dataclass(frozen=True)
class Calendar:
    start: datetime
    end: datetime
    days: int
    timeline: list[CalendarDay]
    frequent: list[FrequentSchedule] = field(default_factory=list)
    unlisted: list[Unlisted] = field(default_factory=list)
    schedules: int = 0  # enabled schedules forecast
    schedules_left_out: int = 0  # beyond MAX_SCHEDULES
    fires: int = 0  # every fire in the window, listed or counted
    cap: int = CAP
    cut_at: datetime | None = None  # where the timeline stops short of `end`, if it does
    cut_entries: int = 0  # entries left out after `cut_at`


def calendar_days(value: str | None) -> int:
    """The window asked for in the query string: 1 or 7 days; anything else is 1."""
    return int(value) if value in {str(d) for d in WINDOW_DAYS} else WINDOW_DAYS[0]


def schedule_calendar(days: int = 1, *, now: datetime | None = None) -> Calendar:
    """Every enabled schedule's fire times from `now` for `days` days (one query)."""
    if days not in WINDOW_DAYS:
        raise ValueError(f"days must be one of {WINDOW_DAYS}")
    start = (now or datetime.now(UTC)).astimezone(UTC)
    end = start + timedelta(days=days)
    tasks = list(
        PeriodicTask.objects.filter(enabled=True)
        .select_related("crontab", "interval", "clocked", "solar")
        .order_by("name")[: MAX_SCHEDULES + 1]
    )
    left_out = 0
    if len(tasks) > MAX_SCHEDULES:
        tasks = tasks[:MAX_SCHEDULES]
        left_out = PeriodicTask.objects.filter(enabled=True).count() - MAX_SCHEDULES
    entries: list[CalendarEntry] = []
    frequent: list[FrequentSchedule] = []
    unlisted: list[Unlisted] = []
    fires = 0
    for task in tasks:
        timing = timing_of(task)
        if timing.kind is Kind.OTHER:
            unlisted.append(Unlisted(task.pk, task.name, "Not forecast here (not a crontab, "
                                     "interval or one-off schedule)."))  # fmt: skip
            continue
        try:
            window = upcoming_until(task, until=end, cap=CAP, now=start)
        except CronError as error:  # a stored crontab the strict parser refuses
            unlisted.append(Unlisted(task.pk, task.name, f"Cannot forecast: {error}"))
            continue
        if not window.times:
            reason = window.note or "Does not fire in this window."
            unlisted.append(Unlisted(task.pk, task.name, reason))
            continue
        fires += window.total
        if window.total > days * 24 * 60 // DENSE_MINUTES:
            window = Window(window.times[:DENSE_LISTED], window.total - DENSE_LISTED, window.note)
        entries.extend(_entries(task, timing.timezone, window))
        if window.more:
            words = _words(timing)
            frequent.append(
                FrequentSchedule(task.pk, task.name, words, len(window.times), window.total)
            )
    entries.sort(key=lambda e: (e.at_utc, e.name))
    cut = entries[MAX_LISTED:]
    entries = entries[:MAX_LISTED]
    return Calendar(
        start=start,
        end=end,
        days=days,
        timeline=_timeline(entries),
        cut_at=entries[-1].at_utc if cut else None,
        cut_entries=len(cut),
        frequent=frequent,
        unlisted=unlisted,
        schedules=len(tasks),
        schedules_left_out=left_out,
        fires=fires,
    )


def _words(timing: Timing) -> str:
    try:
        return timing.in_words()
    except ValueError:  # a crontab stored by other means that we would refuse
        return f"cron {timing.cron}"


def _entries(task: PeriodicTask, zone: str, window: Window) -> list[CalendarEntry]:
    last = len(window.times) - 1
    return [
        CalendarEntry(
            schedule_id=task.pk,
            name=task.name,
            zone=zone,
            at=t.at,
            utc_offset_changed=t.utc_offset_changed,
            more=window.more if n == last else 0,
        )
        for n, t in enumerate(window.times)
    ]


def _timeline(entries: list[CalendarEntry]) -> list[CalendarDay]:
    """The entries (in time order) by UTC day and hour."""
    hours: dict[datetime, list[CalendarEntry]] = {}
    for entry in entries:
        hour = entry.at_utc.replace(minute=0, second=0, microsecond=0)
        hours.setdefault(hour, []).append(entry)
    days: dict[date, list[CalendarHour]] = {}
    for hour, listed in hours.items():
        days.setdefault(hour.date(), []).append(CalendarHour(hour, listed))
    return [CalendarDay(day, day_hours) for day, day_hours in days.items()]
