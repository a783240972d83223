"""Five-field cron expressions with Celery's semantics, which are not quite Vixie cron's.

What we accept is what beat runs: every field is expanded by ``celery.schedules.crontab_parser``
(the parser behind ``crontab`` and django-celery-beat's ``CrontabSchedule.schedule``), after a
stricter syntax check of our own that refuses what Celery would silently misread:

* Ranges: minute 0-59, hour 0-23, day_of_month 1-31, month_of_year 1-12 (or jan-dec),
  day_of_week 0-6 with Sunday = 0 (or sun-sat). ``7`` for Sunday is refused: Celery refuses it.
* Forms: ``*``, ``N``, ``N-M``, ``*/S``, ``N-M/S`` and comma lists of them. A step needs ``*`` or
  a range (Celery rejects ``5/15``). Backward ranges such as ``22-2`` are refused: Celery would
  wrap them round, django-celery-beat's own form validators reject them, so we ask for
  ``22-23,0-2`` instead. Celery ignores trailing junk (``*/5/3`` is ``*/5`` to it); we refuse it.
  Names are only taken in their own field (Celery would read ``jan`` as minute 1).
* Day of month AND day of week: when both are restricted Celery fires only on days matching
  **both** (``0 0 1-7 * 1`` is "the first Monday of the month"), unlike Vixie cron, which fires
  when **either** matches.
* An expression whose day of month occurs in none of its months (``0 0 30 2 *``) never fires and
  is refused. (Feb 29 counts: it fires in leap years.)

Fire times are computed by the very schedule class beat uses,
``django_celery_beat.tzcrontab.TzAwareCrontab`` (the default, ``DJANGO_CELERY_BEAT_TZ_AWARE``),
stepping from one fire to the next the way beat does, so daylight-saving behaviour is Celery's:

* A wall-clock time skipped by a spring-forward change fires once, shifted forward by the length
  of the gap (02:30 Europe/Berlin on 29 Mar 2026 fires at 03:30 CEST, the instant 02:30 CET would
  have been); the other times in the gap that day are dropped.
* A wall-clock time that happens twice at a fall-back change fires once, at its first (summer
  time) occurrence; the repeated hour does not fire again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from celery.schedules import ParseException, crontab, crontab_parser
from cron_descriptor import (  # type: ignore[import-untyped]
    ExpressionDescriptor,
    FormatException,
    MissingFieldException,
    Options,
    WrongArgumentException,
)
from django_celery_beat.tzcrontab import TzAwareCrontab

__all__ = [
    "CronError",
    "CronExpression",
    "FireTime",
    "describe",
    "dst_note",
    "next_fire_times",
    "parse_cron",
]

_DAY_NAMES: Final = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_MONTH_NAMES: Final = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
# Celery's own table (celery.schedules.CRON_DAYS_IN_MONTH): February has a 29th in leap years.
_DAYS_IN_MONTH: Final = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MONTH_ABBR: Final = tuple(name[:3].capitalize() for name in _MONTH_NAMES)

_PART = re.compile(
    r"(?:(?P<star>\*)|(?P<lo>[0-9a-z]+)(?:-(?P<hi>[0-9a-z]+))?)(?:/(?P<step>[0-9a-z]*))?",
    re.ASCII,
)


def _names(names: tuple[str, ...], first: int) -> dict[str, int]:
    table: dict[str, int] = {}
    for number, name in enumerate(names, start=first):
        table[name] = number
        table[name[:3]] = number
    return table


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]
    hint: str = ""


_FIELDS: Final = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day_of_month", 1, 31, {}),
    _Field("month_of_year", 1, 12, _names(_MONTH_NAMES, 1), " (or jan-dec)"),
    _Field("day_of_week", 0, 6, _names(_DAY_NAMES, 0), " (Sunday is 0; or sun-sat)"),
)


class CronError(ValueError):
    """A cron expression (or time zone) we refuse; ``field`` names the culprit when there is one,
    and the message starts with it: ``"hour: 25 is out of range 0-23"``."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)


@dataclass(frozen=True)
class CronExpression:
    """Five checked cron fields, as written (Celery reads names case-insensitively)."""

    minute: str
    hour: str
    day_of_month: str
    month_of_year: str
    day_of_week: str

    def __str__(self) -> str:
        return " ".join(
            (self.minute, self.hour, self.day_of_month, self.month_of_year, self.day_of_week)
        )


@dataclass(frozen=True)
class FireTime:
    """One fire time: ``at`` is aware, in the schedule's zone. ``utc_offset_changed`` is True when
    its UTC offset differs from the previous fire time's (never for the first one)."""

    at: datetime
    utc_offset_changed: bool


def _number(field: _Field, token: str) -> int:
    if token.isdigit():
        value = int(token)
    elif token in field.names:
        value = field.names[token]
    elif field.names:
        raise CronError(f"{token!r} is not a number or a known name", field.name)
    else:
        raise CronError(f"{token!r} is not a number", field.name)
    if not field.low <= value <= field.high:
        raise CronError(f"{token} is out of range {field.low}-{field.high}{field.hint}", field.name)
    return value


def _check_field(field: _Field, text: str) -> set[int]:
    for part in text.lower().split(","):
        if not part:
            raise CronError(f"empty item in list {text!r}", field.name)
        match = _PART.fullmatch(part)
        if match is None:
            raise CronError(
                f"{part!r} is not valid: use *, N, N-M, */S, N-M/S or a comma list", field.name
            )
        step = match["step"]
        if match["lo"] is not None:
            low = _number(field, match["lo"])
            if match["hi"] is not None:
                high = _number(field, match["hi"])
                if high < low:
                    raise CronError(
                        f"range {part.split('/')[0]} runs backwards; split it, e.g. "
                        f"{match['lo']}-{field.high},{field.low}-{match['hi']}",
                        field.name,
                    )
            elif step is not None:
                raise CronError(
                    f"a step needs * or a range: write {match['lo']}-{field.high}/{step}",
                    field.name,
                )
        if step is not None:
            if not step.isdigit():
                raise CronError(f"step {step!r} in {part!r} is not a number", field.name)
            if int(step) < 1:
                raise CronError(f"step in {part!r} must be at least 1", field.name)
    # Our syntax is a strict subset of Celery's: let Celery expand it, so the set is beat's own.
    try:
        return crontab_parser(field.high - field.low + 1, field.low).parse(text)
    except (ParseException, ValueError) as exc:  # pragma: no cover - caught above
        raise CronError(f"{text!r} is not valid: {exc}", field.name) from exc


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def parse_cron(text: str) -> CronExpression:
    """Parse ``"minute hour day-of-month month day-of-week"``; raise :class:`CronError`."""
    fields = text.split()
    if len(fields) != len(_FIELDS):
        raise CronError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
        )
    values = [_check_field(field, value) for field, value in zip(_FIELDS, fields, strict=True)]
    days, months = values[2], values[3]
    if not any(day <= _DAYS_IN_MONTH[month - 1] for month in months for day in days):
        month_names = [_MONTH_NAMES[month - 1].capitalize() for month in sorted(months)]
        raise CronError(
            f"never fires: day {fields[2]} does not occur in {_join(month_names)}",
            "day_of_month",
        )
    expr = CronExpression(*fields)
    _schedule(expr, UTC)  # Celery's own constructor must agree.
    return expr


def _schedule(expr: CronExpression, zone: tzinfo) -> crontab:
    """The schedule object django-celery-beat's ``CrontabSchedule.schedule`` builds."""
    try:
        # Untyped (django-celery-beat ships no hints); a celery.schedules.crontab subclass.
        schedule: crontab = TzAwareCrontab(  # type: ignore[no-untyped-call]
            minute=expr.minute,
            hour=expr.hour,
            day_of_week=expr.day_of_week,
            day_of_month=expr.day_of_month,
            month_of_year=expr.month_of_year,
            tz=zone,
        )
    except (ParseException, ValueError) as exc:  # pragma: no cover - parse_cron checks first
        raise CronError(f"Celery refuses {str(expr)!r}: {exc}") from exc
    return schedule


def describe(expr: CronExpression) -> str:
    """In English words, e.g. ``"At 02:30, Monday through Friday"``.

    When both day of month and day of week are restricted the words read "on day 1 of the
    month, only on Monday": both must match (Celery's rule).
    """
    options = Options()
    options.locale_code = "en_US"
    options.use_24hour_time_format = True
    options.day_of_week_start_index_zero = True
    try:
        text: str = ExpressionDescriptor(str(expr), options).get_description()
    except (FormatException, MissingFieldException, WrongArgumentException):
        return str(expr)
    return text


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise CronError(f"unknown time zone {tz!r}", "timezone") from exc


def next_fire_times(
    expr: CronExpression, tz: str, *, count: int = 5, after: datetime | None = None
) -> list[FireTime]:
    """The next ``count`` times ``expr`` fires in IANA zone ``tz``, strictly after ``after``
    (aware; default now), as beat runs them: each is the next run Celery's crontab computes when
    the previous one is the last run. See the module docstring for the daylight-saving rules."""
    zone = _zone(tz)
    if count < 0:
        raise ValueError("count must not be negative")
    start = datetime.now(UTC) if after is None else after
    if start.utcoffset() is None:
        raise ValueError("after must be timezone-aware")
    schedule = _schedule(expr, zone)
    last = start.astimezone(zone)
    times: list[FireTime] = []
    while len(times) < count:
        base, delta, _now = schedule.remaining_delta(last)
        # celery.utils.time.remaining: the deadline is the wall time converted through UTC.
        fire = (base + delta).astimezone(UTC).astimezone(zone)
        if fire <= last:  # pragma: no cover - Celery always moves forward; never loop on it
            last += timedelta(minutes=1)
            continue
        changed = bool(times) and fire.utcoffset() != times[-1].at.utcoffset()
        times.append(FireTime(at=fire, utc_offset_changed=changed))
        last = fire
    return times


def _transition(before: datetime, after: datetime) -> datetime:
    """The first instant, to the second, between two aware times with the offset of ``after``."""
    zone = after.tzinfo
    low, high = before.astimezone(UTC), after.astimezone(UTC)
    offset = before.utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == offset:
            low = middle
        else:
            high = middle
    return high.astimezone(zone)


def dst_note(times: list[FireTime]) -> str:
    """``""``, or a sentence naming the clock changes that fall among ``times``."""
    changes: list[str] = []
    daylight = False
    for previous, current in pairwise(times):
        if not current.utc_offset_changed:
            continue
        old, new = previous.at.utcoffset(), current.at.utcoffset()
        if old is None or new is None:  # pragma: no cover - FireTime.at is aware
            continue
        daylight = daylight or previous.at.dst() != current.at.dst()
        when = _transition(previous.at, current.at)
        direction = "forward" if new > old else "back"
        changes.append(f"{direction} on {when.day} {_MONTH_ABBR[when.month - 1]} {when.year}")
    if not changes:
        return ""
    kind = "daylight-saving" if daylight else "time-zone offset"
    return f"A {kind} change falls among these: clocks go {' and '.join(changes)}."
