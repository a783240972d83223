"""The stats rollup: counts final runs into `JobHourStats` and `JobTotals`, each run once.

One transaction holds a lock on the `RollupMark` row, so two rollups (the periodic job on two
workers, a manual run) serialise and the second starts where the first stopped. Runs are read
in batches ordered by (finished_at, id) with a keyset cursor, so memory stays bounded and runs
sharing a finish time across a batch boundary are neither skipped nor counted twice. Runs that
finished less than TASKDECK_ROLLUP_LAG_SECONDS ago wait for the next pass: their final write may
still be committing. Deleting runs later never touches the stats.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeAlias, TypeVar, cast

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ..models import JobHourStats, JobTotals, RollupMark, Run, StatsCounts
from ..models.stats import empty_buckets
from .quantiles import bucket_index

MARK_NAME = "runs"
# The mark of a rollup that never ran: everything after it is history still to count.
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)
BATCH_SIZE = 5000

# id, job_name, state, queued_at, eta, started_at, finished_at
RunRow: TypeAlias = tuple[
    int, str, str, datetime, datetime | None, datetime | None, datetime
]  # fmt: skip
HourKey: TypeAlias = tuple[str, datetime, str]  # job, hour, state
TotalKey: TypeAlias = tuple[str, str]  # job, state
Timings: TypeAlias = tuple[float, float]  # duration, queue wait (seconds)
Key = TypeVar("Key", HourKey, TotalKey)


@dataclass
class Tally:
    """What one key gained in this pass; added onto its stored row."""

    count: int = 0
    duration_count: int = 0
    duration_sum: float = 0.0
    duration_buckets: list[int] = field(default_factory=empty_buckets)
    wait_count: int = 0
    wait_sum: float = 0.0
    wait_buckets: list[int] = field(default_factory=empty_buckets)
    last_finished_at: datetime | None = None

    def add(self, finished_at: datetime, timings: Timings | None) -> None:
        self.count += 1
        if self.last_finished_at is None or finished_at > self.last_finished_at:
            self.last_finished_at = finished_at
        if timings is None:
            return  # never started (cancelled or lost in the queue): no duration, no wait
        duration, wait = timings
        self.duration_count += 1
        self.duration_sum += duration
        self.duration_buckets[bucket_index(duration)] += 1
        self.wait_count += 1
        self.wait_sum += wait
        self.wait_buckets[bucket_index(wait)] += 1

    def apply_to(self, stats: StatsCounts) -> None:
        stats.count += self.count
        stats.duration_count += self.duration_count
        stats.duration_sum += self.duration_sum
        stats.duration_buckets = _add(stats.duration_buckets, self.duration_buckets)
        stats.wait_count += self.wait_count
        stats.wait_sum += self.wait_sum
        stats.wait_buckets = _add(stats.wait_buckets, self.wait_buckets)
        if self.last_finished_at is not None and (
            stats.last_finished_at is None or self.last_finished_at > stats.last_finished_at
        ):
            stats.last_finished_at = self.last_finished_at


UPDATED_FIELDS = [
    "count",
    "duration_count",
    "duration_sum",
    "duration_buckets",
    "wait_count",
    "wait_sum",
    "wait_buckets",
    "last_finished_at",
]


def roll_up(now: datetime | None = None) -> int:
    """Count runs finished since the last rollup into the stats tables; returns how many."""
    upto = (now or timezone.now()) - timedelta(seconds=settings.TASKDECK_ROLLUP_LAG_SECONDS)
    with transaction.atomic():
        # Waits here while another rollup holds the mark, then reads the mark it left.
        mark, _ = RollupMark.objects.select_for_update().get_or_create(
            name=MARK_NAME, defaults={"upto": BEGINNING}
        )
        if upto <= mark.upto:
            return 0
        counted = 0
        totals: dict[TotalKey, Tally] = {}
        hours: dict[HourKey, Tally] = {}
        for batch in _final_runs(after=mark.upto, upto=upto):
            for _, job_name, state, queued_at, eta, started_at, finished_at in batch:
                timings = _timings(queued_at, eta, started_at, finished_at)
                _tally(totals, (job_name, state)).add(finished_at, timings)
                _tally(hours, (job_name, _hour_of(finished_at), state)).add(finished_at, timings)
            counted += len(batch)
            # Runs come in finish order: hours before the batch's last one are complete.
            current = _hour_of(batch[-1][6])
            _save_hours({key: tally for key, tally in hours.items() if key[1] < current})
            hours = {key: tally for key, tally in hours.items() if key[1] >= current}
        _save_hours(hours)
        _save_totals(totals)
        mark.upto = upto
        mark.save(update_fields=["upto"])
    return counted


def _final_runs(after: datetime, upto: datetime) -> Iterator[Sequence[RunRow]]:
    """Final runs with finished_at in (after, upto], BATCH_SIZE at a time, in (finished_at, id)
    order; the next batch starts strictly after the last row's (finished_at, id)."""
    window = Run.objects.final().filter(finished_at__gt=after, finished_at__lte=upto)
    cursor: tuple[datetime, int] | None = None
    while True:
        page = window
        if cursor is not None:
            finished_at, run_id = cursor
            # The >= keeps the index range on finished_at; the OR is the row-value comparison.
            page = page.filter(finished_at__gte=finished_at).filter(
                Q(finished_at__gt=finished_at) | Q(id__gt=run_id)
            )
        rows = page.order_by("finished_at", "id").values_list(
            "id", "job_name", "state", "queued_at", "eta", "started_at", "finished_at"
        )[:BATCH_SIZE]
        batch = cast("list[RunRow]", list(rows))  # finished_at is never NULL in the window
        if not batch:
            return
        yield batch
        if len(batch) < BATCH_SIZE:
            return
        cursor = (batch[-1][6], batch[-1][0])


def _timings(
    queued_at: datetime, eta: datetime | None, started_at: datetime | None, finished_at: datetime
) -> Timings | None:
    """Duration (start to finish) and queue wait (queued, or the ETA if later, to start), both
    clamped at 0 against clock skew between hosts; None for a run that never started."""
    if started_at is None:
        return None
    ready_at = max(queued_at, eta) if eta is not None else queued_at
    return (
        max((finished_at - started_at).total_seconds(), 0.0),
        max((started_at - ready_at).total_seconds(), 0.0),
    )


def _tally(tallies: dict[Key, Tally], key: Key) -> Tally:
    tally = tallies.get(key)
    if tally is None:
        tally = tallies[key] = Tally()
    return tally


def _hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _add(stored: Sequence[int], extra: Sequence[int]) -> list[int]:
    total = empty_buckets()
    for index in range(len(total)):
        total[index] = (int(stored[index]) if index < len(stored) else 0) + extra[index]
    return total


def _save_hours(tallies: dict[HourKey, Tally]) -> None:
    if not tallies:
        return
    hours = {hour for _, hour, _ in tallies}
    stored = {
        (row.job_name, row.hour, row.state): row
        for row in JobHourStats.objects.filter(hour__in=hours)
    }
    changed: list[JobHourStats] = []
    created: list[JobHourStats] = []
    for (job_name, hour, state), tally in tallies.items():
        row = stored.get((job_name, hour, state))
        if row is None:
            row = JobHourStats(job_name=job_name, hour=hour, state=state)
            created.append(row)
        else:
            changed.append(row)
        tally.apply_to(row)
    JobHourStats.objects.bulk_update(changed, UPDATED_FIELDS, batch_size=500)
    JobHourStats.objects.bulk_create(created, batch_size=500)


def _save_totals(tallies: dict[TotalKey, Tally]) -> None:
    if not tallies:
        return
    stored = {
        (row.job_name, row.state): row
        for row in JobTotals.objects.filter(job_name__in={job for job, _ in tallies})
    }
    changed: list[JobTotals] = []
    created: list[JobTotals] = []
    for (job_name, state), tally in tallies.items():
        row = stored.get((job_name, state))
        if row is None:
            row = JobTotals(job_name=job_name, state=state)
            created.append(row)
        else:
            changed.append(row)
        tally.apply_to(row)
    JobTotals.objects.bulk_update(changed, UPDATED_FIELDS, batch_size=500)
    JobTotals.objects.bulk_create(created, batch_size=500)
