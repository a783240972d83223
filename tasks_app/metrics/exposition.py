"""/metrics in the Prometheus text format or OpenMetrics, from a collector that reads a few small
rows per scrape: counters and histograms from the rolled-up totals (`JobTotals`, never the run
ledger), active and queued runs through the state index, queue depths from the broker, online
workers from the presence set (`worker.presence`) and whether a beat leads (its lock) in one
round trip to the broker's Redis, open alerts through their index, and the marks of the rollup
and of the alert evaluation (one query). Both passes run on beat's schedule: a stale evaluation
or a beat_up of 0 says the periodic alert checks (missed schedules among them) have stopped.

Each scrape builds its own CollectorRegistry: the global one would also publish this process's
Python and GC metrics, which say nothing about the jobs (and differ between web workers).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from celery import current_app
from django.conf import settings
from django.db.models import Count, Min, Q
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from ..alerts.evaluate import EVALUATED_MARK
from ..jobs.policies import QUEUES
from ..models import QUEUED_STATES, Alert, AlertRule, JobTotals, RollupMark, Run
from ..schedules.beat import DEFAULT_LOCK_KEY
from ..worker import broker, presence
from .quantiles import cumulative, merge
from .rollup import MARK_NAME

logger = logging.getLogger(__name__)

# The job's label. Prometheus sets its own `job` (the scrape job) on every series and renames a
# scraped one to `exported_job` unless the scrape config says `honor_labels: true`.
JOB = "job_name"  # not "job": Prometheus sets that label itself (the scrape job)


def exposition(accept: str) -> tuple[bytes, str]:
    """The body and Content-Type of one scrape: OpenMetrics when the Accept header asks for it,
    else the Prometheus text format."""
    encoder, content_type = choose_encoder(accept)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TaskdeckCollector())
    return encoder(registry), content_type


def content_type_for(accept: str) -> str:
    """What `exposition` would answer, without collecting anything (for HEAD)."""
    return choose_encoder(accept)[1]


class TaskdeckCollector(Collector):
    def __init__(self, now: datetime | None = None) -> None:
        self.now = now

    def collect(self) -> Iterator[Metric]:
        now = self.now or timezone.now()
        yield from run_totals()
        yield from active_runs(now)
        yield from broker_state()
        yield from broker_redis()
        yield alerts_firing()
        yield from marks(now)


def run_totals() -> Iterator[Metric]:
    """Counters and histograms of final runs, from the rollup's all-time totals (one row per
    job and state: a small table, read whole)."""
    runs = CounterMetricFamily(
        "taskdeck_runs", "Runs that became final, by job and final state.", labels=[JOB, "state"]
    )
    durations: dict[str, list[Sequence[int]]] = defaultdict(list)
    waits: dict[str, list[Sequence[int]]] = defaultdict(list)
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    rows = JobTotals.objects.order_by("job_name", "state").values_list(
        "job_name", "state", "count", "duration_buckets", "duration_sum", "wait_buckets", "wait_sum"
    )
    for job_name, state, count, duration_buckets, duration_sum, wait_buckets, wait_sum in rows:
        runs.add_metric([job_name, state], count)
        durations[job_name].append(duration_buckets)
        waits[job_name].append(wait_buckets)
        sums[job_name][0] += duration_sum
        sums[job_name][1] += wait_sum
    yield runs
    duration = HistogramMetricFamily(
        "taskdeck_run_duration_seconds",
        "Time from start to finish of final runs that started.",
        labels=[JOB],
        unit="seconds",
    )
    wait = HistogramMetricFamily(
        "taskdeck_run_queue_wait_seconds",
        "Time from queued (or the ETA, if later) to started, of final runs that started.",
        labels=[JOB],
        unit="seconds",
    )
    for job_name in durations:
        duration.add_metric([job_name], _buckets(durations[job_name]), sums[job_name][0])
        wait.add_metric([job_name], _buckets(waits[job_name]), sums[job_name][1])
    yield duration
    yield wait


def _buckets(histograms: list[Sequence[int]]) -> list[tuple[str, float]]:
    return [(bound, float(count)) for bound, count in cumulative(merge(histograms))]


def active_runs(now: datetime) -> tuple[Metric, Metric]:
    """Runs not final yet by job and state, and per queue how long the oldest queued run has
    been waiting: since it was queued, or since its ETA (a run due later is not waiting yet;
    0 for a queue with none). One pass over the active runs, through the state index."""
    active = GaugeMetricFamily(
        "taskdeck_runs_active", "Runs queued or running, by job and state.", labels=[JOB, "state"]
    )
    oldest_age = GaugeMetricFamily(
        "taskdeck_queue_oldest_age_seconds",
        "Age of the oldest queued run that is due, by queue (0: none waiting).",
        labels=["queue"],
        unit="seconds",
    )
    waiting = Q(state__in=sorted(QUEUED_STATES)) & (Q(eta__isnull=True) | Q(eta__lte=now))
    rows = (
        Run.objects.active()
        .order_by()
        .values_list("job_name", "state", "queue")
        .annotate(
            runs=Count("id"),
            oldest=Min(Greatest("queued_at", Coalesce("eta", "queued_at")), filter=waiting),
        )
    )
    counts: dict[tuple[str, str], int] = defaultdict(int)
    oldest: dict[str, datetime] = {}
    default_queue = str(current_app.conf.task_default_queue)
    for job_name, state, queue, count, since in rows:
        counts[job_name, state] += count
        name = queue or default_queue
        if since is not None and (name not in oldest or since < oldest[name]):
            oldest[name] = since
    for (job_name, state), count in sorted(counts.items()):
        active.add_metric([job_name, state], count)
    for name in sorted(set(QUEUES) | set(oldest)):
        age = (now - oldest[name]).total_seconds() if name in oldest else 0.0
        oldest_age.add_metric([name], max(age, 0.0))
    return active, oldest_age


def broker_state() -> Iterator[Metric]:
    """Queue depths as the broker reports them; none, and broker_up 0, when it does not answer."""
    up = GaugeMetricFamily("taskdeck_broker_up", "1 if the broker answered this scrape, else 0.")
    depth = GaugeMetricFamily(
        "taskdeck_queue_depth", "Messages waiting in the broker, by queue.", labels=["queue"]
    )
    try:
        depths = broker.queue_depths()
    except Exception as error:  # any failure of the broker: say so in the metric, not a 500
        logger.warning("Metrics: the broker does not answer: %s", error)
        up.add_metric([], 0)
    else:
        up.add_metric([], 1)
        for queue in depths:
            depth.add_metric([queue.name], queue.messages)
    yield up
    yield depth


def broker_redis() -> tuple[Metric, Metric]:
    """Online workers and whether a beat holds the leader lock, in one round trip to the
    broker's Redis. When it does not answer (or the broker is not Redis): no workers sample
    (unknown, not 0; taskdeck_broker_up says why) and beat_up 0 (no beat can lead then)."""
    online = GaugeMetricFamily(
        "taskdeck_workers_online",
        f"Workers that said they were online in the last {presence.ONLINE_WINDOW:.0f} s.",
    )
    beat_up = GaugeMetricFamily(
        "taskdeck_beat_up",
        "1 if a beat holds the leader lock in the broker's Redis, else 0 (none, or no answer).",
    )
    lock_key = str(settings.TASKDECK_BEAT_LOCK_KEY or DEFAULT_LOCK_KEY)  # as the beat reads it
    try:
        count, leading = presence.online_count_and_exists(lock_key)
    except presence.UNAVAILABLE as error:
        logger.warning("Metrics: cannot read the online workers and the beat lock: %s", error)
        beat_up.add_metric([], 0)
    else:
        online.add_metric([], count)
        beat_up.add_metric([], 1 if leading else 0)
    return online, beat_up


def alerts_firing() -> Metric:
    """Open (unresolved) alerts by enabled rule: 0 for rules with none, so the series never
    vanish. A disabled rule is no longer evaluated, so its open alerts would never resolve:
    they are not counted as firing."""
    gauge = GaugeMetricFamily(
        "taskdeck_alerts_firing", "Alerts firing (not resolved), by rule.", labels=["rule"]
    )
    firing: dict[Any, int] = dict(
        Alert.objects.filter(resolved_at__isnull=True)
        .order_by()
        .values("rule_id")
        .annotate(alerts=Count("id"))
        .values_list("rule_id", "alerts")
    )
    enabled = AlertRule.objects.filter(enabled=True).order_by("name")
    for rule_id, name in enabled.values_list("id", "name"):
        gauge.add_metric([name], firing.get(rule_id, 0))
    return gauge


def marks(now: datetime) -> tuple[Metric, Metric, Metric]:
    """How far behind the counters and histograms are (+Inf before the first rollup), the
    moment they count up to and the last alert evaluation, as Unix times (0: never)."""
    lag = GaugeMetricFamily(
        "taskdeck_stats_rollup_lag_seconds",
        "Seconds since the last moment the run statistics count up to.",
        unit="seconds",
    )
    upto = GaugeMetricFamily(
        "taskdeck_stats_rollup_upto_timestamp_seconds",
        "Unix time the run statistics count up to (the last rollup, less the rollup lag "
        "setting); 0 before the first rollup.",
        unit="seconds",
    )
    evaluated = GaugeMetricFamily(
        "taskdeck_alerts_last_evaluation_timestamp_seconds",
        "Unix time of the last evaluation of the alert rules; 0 if they were never evaluated.",
        unit="seconds",
    )
    stored = dict(
        RollupMark.objects.filter(name__in=[MARK_NAME, EVALUATED_MARK]).values_list("name", "upto")
    )
    counted = stored.get(MARK_NAME)
    lag.add_metric([], (now - counted).total_seconds() if counted is not None else float("inf"))
    upto.add_metric([], counted.timestamp() if counted is not None else 0.0)
    last = stored.get(EVALUATED_MARK)
    evaluated.add_metric([], last.timestamp() if last is not None else 0.0)
    return lag, upto, evaluated
