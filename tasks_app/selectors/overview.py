"""The overview's numbers: runs by state over a window, runs and failures per hour, the runs
in flight and the latest failures."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncHour
from django.utils import timezone

from ..models import FAILED_STATES, Run


@dataclass(frozen=True)
class StateTotals:
    label: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def state_totals(*, hours: int, label: str) -> StateTotals:
    since = timezone.now() - timedelta(hours=hours)
    rows = Run.objects.filter(queued_at__gte=since).values("state").annotate(n=Count("id"))
    return StateTotals(label, {row["state"]: row["n"] for row in rows.order_by()})


@dataclass(frozen=True)
class HourBucket:
    start: datetime
    runs: int
    failures: int


def hourly_activity(hours: int = 24) -> list[HourBucket]:
    """Runs queued per hour and how many of them failed, oldest first, gaps filled with 0."""
    now = timezone.localtime()
    first = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    rows = (
        Run.objects.filter(queued_at__gte=first)
        .annotate(hour=TruncHour("queued_at"))
        .values("hour")
        .annotate(
            runs=Count("id"),
            failures=Count("id", filter=Q(state__in=sorted(FAILED_STATES))),
        )
        .order_by()
    )
    by_hour = {timezone.localtime(row["hour"]): row for row in rows}
    buckets = []
    for i in range(hours):
        start = first + timedelta(hours=i)
        row = by_hour.get(start, {})
        buckets.append(HourBucket(start, row.get("runs", 0), row.get("failures", 0)))
    return buckets


def active_runs(limit: int = 20) -> list[Run]:
    return list(Run.objects.active().order_by("-queued_at", "-id").defer("log", "args")[:limit])


def latest_failures(limit: int = 10) -> list[Run]:
    return list(Run.objects.failed().order_by("-queued_at", "-id").defer("log", "args")[:limit])
