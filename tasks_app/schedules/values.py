"""A schedule's values as the operator edits them: what fires and when, free of any model row.

Kept apart from the beat rows (`rows`) and the forecast (`forecast`) so forms, the API and the
checks can build and compare definitions without touching the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

from ..models import MissedRunPolicy
from .cron import CronExpression, describe, parse_cron

__all__ = ["PERIODS", "Kind", "ScheduleDefinition", "Timing", "zone_or_default"]


class Kind(StrEnum):
    CRONTAB = "crontab"
    INTERVAL = "interval"
    ONE_OFF = "one_off"
    OTHER = "other"  # solar, or no schedule row: shown, not editable here


# Beat's own period names, in the order the editor offers them.
PERIODS: Final = ("seconds", "minutes", "hours", "days")
_PERIOD_SECONDS: Final = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


@dataclass(frozen=True)
class Timing:
    """When a schedule fires. `timezone` is the crontab's zone; for the other kinds it is only
    the zone the times are shown (and, for a one-off, were entered) in."""

    kind: Kind
    cron: str = ""
    timezone: str = "UTC"
    every: int = 0
    period: str = "minutes"
    run_at: datetime | None = None

    def expression(self) -> CronExpression:
        return parse_cron(self.cron)

    def step(self) -> timedelta:
        return timedelta(seconds=self.every * _PERIOD_SECONDS[self.period])

    def in_words(self) -> str:
        if self.kind is Kind.CRONTAB:
            return f"{describe(self.expression())} ({self.timezone})"
        if self.kind is Kind.INTERVAL:
            unit = self.period[:-1] if self.every == 1 else self.period
            return f"Every {self.every} {unit}" if self.every != 1 else f"Every {unit}"
        if self.kind is Kind.ONE_OFF and self.run_at is not None:
            local = timezone.localtime(self.run_at, zone_or_default(self.timezone))
            return f"Once, at {local:%Y-%m-%d %H:%M %Z}"
        return "A schedule this dashboard cannot edit"


@dataclass(frozen=True)
class MissedRuns:
    """A schedule's missed-run policy, as stored in its `ScheduleOptions` (or the default)."""

    policy: str = MissedRunPolicy.RUN_ONCE.value
    cap: int = 10

    def in_words(self) -> str:
        if self.policy == MissedRunPolicy.SKIP:
            return "Skip missed runs"
        if self.policy == MissedRunPolicy.RUN_ALL:
            return f"Run every missed run (at most {self.cap})"
        return "Run once for all missed runs"


DEFAULT: Final = MissedRuns()  # beat's own behaviour


@dataclass(frozen=True)
class ScheduleDefinition:
    """Everything the editor sets on a PeriodicTask. `params` are the job's JSON kwargs."""

    name: str
    job: str
    timing: Timing
    params: dict[str, Any] = field(default_factory=dict)
    args: list[Any] = field(default_factory=list)  # plain (non-@job) tasks only
    description: str = ""
    enabled: bool = True
    start_time: datetime | None = None
    expires: datetime | None = None
    one_off: bool = False
    queue: str = ""
    priority: int | None = None
    # The missed-run policy to store beside it; None leaves the stored one as it is.
    missed: MissedRuns | None = None


def zone_or_default(name: str) -> Any:
    """The named zone, or the current one when the name is unknown (a row written elsewhere)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.get_current_timezone()
