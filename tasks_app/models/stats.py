"""Run statistics rolled up from the ledger (`tasks_app.metrics.rollup`), so /metrics and the job
pages read a few small rows instead of scanning millions of runs.

A run is counted once, when it is final, into the hour it finished in (`JobHourStats`, for
windows such as 24 h or 7 d) and into all-time totals (`JobTotals`, for Prometheus counters,
which must never go down: deleting old runs does not touch them). Durations (started to
finished) and queue waits (queued, or its ETA if later, to started) are kept as histograms with
fixed bucket bounds, from which percentiles are estimated the way Prometheus'
histogram_quantile does.
"""

from __future__ import annotations

from django.db import models

# Upper bounds in seconds, the last bucket being +Inf. Fixed: changing them would mix
# incompatible histograms (add a bound only with a migration that resets the stats).
BUCKET_BOUNDS: tuple[float, ...] = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200,
    21600, 86400,
)  # fmt: skip
BUCKETS = len(BUCKET_BOUNDS) + 1  # with +Inf


def empty_buckets() -> list[int]:
    return [0] * BUCKETS


class StatsCounts(models.Model):
    """What is counted for a job and final state: runs, and histograms of duration and queue
    wait (per bucket, not cumulative; `*_sum` in seconds)."""

    job_name = models.CharField(max_length=255)
    state = models.CharField(max_length=16)
    count = models.BigIntegerField(default=0)
    duration_count = models.BigIntegerField(default=0)
    duration_sum = models.FloatField(default=0.0)
    duration_buckets = models.JSONField(default=empty_buckets)
    wait_count = models.BigIntegerField(default=0)
    wait_sum = models.FloatField(default=0.0)
    wait_buckets = models.JSONField(default=empty_buckets)
    # The latest finish counted (for "last success" without reading the ledger).
    last_finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True


class JobHourStats(StatsCounts):
    """Runs of one job that became final in one hour (UTC, truncated), by final state."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["job_name", "hour", "state"], name="jobhourstats_one_per_key"
            )
        ]
        indexes = [models.Index(fields=["hour"], name="jobhourstats_hour_idx")]
        verbose_name_plural = "job hour stats"

    def __str__(self) -> str:
        return f"{self.job_name} {self.hour:%Y-%m-%d %H}h {self.state}: {self.count}"


class JobTotals(StatsCounts):
    """All runs of one job ever counted, by final state."""

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job_name", "state"], name="jobtotals_one_per_key")
        ]
        verbose_name_plural = "job totals"

    def __str__(self) -> str:
        return f"{self.job_name} {self.state}: {self.count}"


class RollupMark(models.Model):
    """How far the rollup has counted: runs finished at or before `upto` are in the stats. One
    row per rollup (by name); the rollup locks it, so two rollups never count a run twice."""

    name = models.CharField(max_length=50, unique=True)
    upto = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.upto.isoformat()}"
