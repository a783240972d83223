"""QUEUED_TOO_LONG and RUNNING_TOO_LONG: runs past their rule's deadline.

A queued run's clock starts when it was queued, or at its start time (eta) if it has one; a
running run's when it started. The alert resolves when the run leaves the state it was late in
(queued: it started or ended; running: it ended) or is deleted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q

from ..models import FINAL_STATES, QUEUED_STATES, Alert, AlertRule, AlertRuleKind, Run
from .access import Access
from .firing import NEW_PER_PASS, duration, fire, matching_runs, resolve, run_candidate

FIELDS = (
    "id", "task_id", "job_name", "schedule_name", "state", "queue", "error", "queued_at", "eta",
    "started_at", "worker",
)  # fmt: skip


def fire_late(rule: AlertRule, now: datetime, access: Access) -> int:
    """Alert on every run of the rule's job past the deadline (at most NEW_PER_PASS)."""
    if rule.threshold_seconds is None:
        return 0  # refused by the rule's form; nothing to measure against
    deadline = now - timedelta(seconds=rule.threshold_seconds)
    alerted = Alert.objects.filter(rule=rule, run=OuterRef("pk"))
    limit = duration(rule.threshold_seconds)
    if rule.kind == AlertRuleKind.QUEUED_TOO_LONG:
        late = Run.objects.queued().filter(
            Q(eta__isnull=True) | Q(eta__lt=deadline), queued_at__lt=deadline
        )
        order = "queued_at"
    else:
        late = Run.objects.running().filter(started_at__lt=deadline)
        order = "started_at"
    runs = matching_runs(rule, late, access).exclude(Exists(alerted)).only(*FIELDS)
    runs = runs.order_by(order, "id")
    return fire(
        rule, (run_candidate(run, _summary(rule, run, limit)) for run in runs[:NEW_PER_PASS]), now
    )


def resolve_on_time(rule: AlertRule, now: datetime) -> int:
    """Resolve the rule's open alerts whose run moved on (or is gone)."""
    if rule.kind == AlertRuleKind.QUEUED_TOO_LONG:
        moved_on = ~Q(run__state__in=sorted(QUEUED_STATES))
    else:
        moved_on = Q(run__state__in=sorted(FINAL_STATES))
    return resolve(Alert.objects.filter(Q(run__isnull=True) | moved_on, rule=rule), now)


def _summary(rule: AlertRule, run: Run, limit: str) -> str:
    if rule.kind == AlertRuleKind.QUEUED_TOO_LONG:
        where = f" on queue {run.queue}" if run.queue else ""
        return f"{run.job_name} has waited over {limit}{where} without starting"
    worker = f" on {run.worker}" if run.worker else ""
    return f"{run.job_name} has been running for over {limit}{worker}"
