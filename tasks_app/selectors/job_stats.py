"""Per-job numbers (runs, failure rate, duration and queue wait percentiles, last success) for
the jobs list and a job's page, and the overview's queue wait per hour. Read from the rolled-up
stats (`JobHourStats`, `JobTotals`) only, never the run ledger: a page reads at most one row per
job, hour and final state, however many runs there are. Percentiles are estimates from the
histograms (`metrics.quantiles`), so the pages show them with "≈".

Windows are whole UTC hours, as the stats are kept: "24 h" is the current hour and the 23
before it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from ..metrics.quantiles import merge, quantile
from ..models import FAILED_STATES, JobHourStats, JobTotals, RunState

DAY = 24
WEEK = 24 * 7
FAILED = frozenset(state.value for state in FAILED_STATES)


def _window_label(hours: int) -> str:
    return f"{hours // 24} d" if hours % 24 == 0 and hours > 24 else f"{hours} h"


@dataclass(frozen=True)
class WindowNumbers:
    """A job's runs that became final in the last `hours` hours."""

    hours: int
    runs: int = 0
    failures: int = 0  # failed or lost
    duration_buckets: Sequence[int] = field(default_factory=list)
    wait_buckets: Sequence[int] = field(default_factory=list)

    @property
    def label(self) -> str:
        return _window_label(self.hours)

    @property
    def failure_percent(self) -> float | None:
        """Failed or lost out of all final runs (cancelled ones included), in percent."""
        return round(100 * self.failures / self.runs, 1) if self.runs else None

    @property
    def duration_p50(self) -> float | None:
        return _estimate(0.5, self.duration_buckets)

    @property
    def duration_p95(self) -> float | None:
        return _estimate(0.95, self.duration_buckets)

    @property
    def wait_p50(self) -> float | None:
        return _estimate(0.5, self.wait_buckets)

    @property
    def wait_p95(self) -> float | None:
        return _estimate(0.95, self.wait_buckets)


def _estimate(q: float, buckets: Sequence[int]) -> float | None:
    return quantile(q, buckets) if buckets else None


@dataclass(frozen=True)
class JobNumbers:
    job_name: str
    windows: tuple[WindowNumbers, ...]  # in the order asked for
    last_success: datetime | None
    ever_ran: bool  # any final run counted, however long ago

    def window(self, hours: int) -> WindowNumbers:
        return next(w for w in self.windows if w.hours == hours)


def hour_floor(moment: datetime) -> datetime:
    """The UTC hour `moment` falls in, as the stats key it."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def job_numbers(
    names: Iterable[str],
    *,
    windows: Sequence[int] = (DAY, WEEK),
    unreadable_jobs: Collection[str] = (),
    now: datetime | None = None,
) -> dict[str, JobNumbers]:
    """The numbers of each job in `names` over each window (in hours), by job name. Jobs in
    `unreadable_jobs` (`services.unreadable_jobs`: their runs are not the viewer's to read) are
    left out of the answer, and never queried."""
    hidden = frozenset(unreadable_jobs)
    wanted = sorted({name for name in names if name not in hidden})
    if not wanted or not windows:
        return {}
    current = hour_floor(now or timezone.now())
    starts = {hours: current - timedelta(hours=hours - 1) for hours in windows}
    rows = JobHourStats.objects.filter(
        job_name__in=wanted, hour__gte=min(starts.values()), hour__lte=current
    ).values_list("job_name", "hour", "state", "count", "duration_buckets", "wait_buckets")
    # (job, window) -> [runs, failures, duration histograms, wait histograms]
    sums: dict[tuple[str, int], tuple[list[int], list[list[int]], list[list[int]]]] = defaultdict(
        lambda: ([0, 0], [], [])
    )
    for job_name, hour, state, count, durations, waits in rows.order_by():
        for hours, start in starts.items():
            if hour >= start:
                counts, duration_lists, wait_lists = sums[(job_name, hours)]
                counts[0] += count
                counts[1] += count if state in FAILED else 0
                duration_lists.append(durations)
                wait_lists.append(waits)
    totals: dict[str, tuple[bool, datetime | None]] = {}
    for job_name, state, count, last in JobTotals.objects.filter(job_name__in=wanted).values_list(
        "job_name", "state", "count", "last_finished_at"
    ):
        ever, success = totals.get(job_name, (False, None))
        totals[job_name] = (
            ever or count > 0,
            last if state == RunState.SUCCESS.value else success,
        )
    answer = {}
    for name in wanted:
        numbers = []
        for hours in windows:
            if (name, hours) in sums:
                (runs, failures), durations, waits = sums[(name, hours)]
                numbers.append(WindowNumbers(hours, runs, failures, merge(durations), merge(waits)))
            else:
                numbers.append(WindowNumbers(hours))
        ever, success = totals.get(name, (False, None))
        any_recent = any(w.runs for w in numbers)
        answer[name] = JobNumbers(name, tuple(numbers), success, ever or any_recent)
    return answer


@dataclass(frozen=True)
class WaitHour:
    """Queue waits of the runs that became final in one hour (runs that never started have
    none)."""

    start: datetime
    runs: int
    p50: float | None
    p95: float | None


def queue_wait_by_hour(
    hours: int = DAY, *, unreadable_jobs: Collection[str] = (), now: datetime | None = None
) -> list[WaitHour]:
    """p50 and p95 queue wait per hour over the last `hours` hours, every job but
    `unreadable_jobs` together, oldest first, hours without runs included."""
    current = hour_floor(now or timezone.now())
    first = current - timedelta(hours=hours - 1)
    rows = JobHourStats.objects.filter(hour__gte=first, hour__lte=current)
    if unreadable_jobs:
        rows = rows.exclude(job_name__in=sorted(unreadable_jobs))
    by_hour: dict[datetime, list[list[int]]] = defaultdict(list)
    for hour, waits in rows.values_list("hour", "wait_buckets").order_by():
        by_hour[hour_floor(hour)].append(waits)
    answer = []
    for i in range(hours):
        start = first + timedelta(hours=i)
        merged = merge(by_hour.get(start, []))
        answer.append(WaitHour(start, sum(merged), _estimate(0.5, merged), _estimate(0.95, merged)))
    return answer
