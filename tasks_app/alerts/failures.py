"""RUN_FAILED and SCHEDULE_FAILING: alerts about runs that failed or were lost.

They fire from the worker's hook the moment a run fails (`fire_for_run`), and the periodic pass
catches up on failures the hook missed (a worker killed between the two, a hook error) within a
bounded window. They resolve when a later run of the same job (or schedule) succeeds.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, Max, OuterRef

from ..models import FAILED_STATES, Alert, AlertRule, AlertRuleKind, Run, RunState
from .firing import NEW_PER_PASS, fire, matches, matching_runs, resolve, run_candidate
from .messages import first_line

# The periodic pass looks back this far for failures the hook did not alert on.
CATCH_UP = timedelta(hours=1)
# Open alerts a pass checks for a resolution, per rule.
OPEN_CHECKED = 1000

FIELDS = (
    "id", "task_id", "job_name", "schedule_name", "state", "queue", "error", "finished_at",
    "queued_at",
)  # fmt: skip


def fire_for_run(rule: AlertRule, run: Run, now: datetime) -> int:
    """The hook's path: alert on this failed run if the rule takes it; returns alerts fired."""
    if run.state not in FAILED_STATES or not matches(rule, run):
        return 0
    if rule.kind == AlertRuleKind.RUN_FAILED:
        return fire(rule, [run_candidate(run, failed_summary(run))], now)
    if rule.kind == AlertRuleKind.SCHEDULE_FAILING and run.schedule_name:
        return fire_streak(rule, run.schedule_name, now)
    return 0


def catch_up(rule: AlertRule, now: datetime) -> int:
    """The periodic pass: failures since the rule was created (at most CATCH_UP ago) that it
    has not alerted on yet."""
    since = max(now - CATCH_UP, rule.created_at)
    failed = matching_runs(rule, Run.objects.failed().filter(finished_at__gte=since))
    if rule.kind == AlertRuleKind.RUN_FAILED:
        alerted = Alert.objects.filter(rule=rule, run=OuterRef("pk"))
        runs = failed.exclude(Exists(alerted)).only(*FIELDS).order_by("finished_at", "id")
        return fire(
            rule, (run_candidate(run, failed_summary(run)) for run in runs[:NEW_PER_PASS]), now
        )
    schedules = (
        failed.exclude(schedule_name="")
        .order_by()
        .values_list("schedule_name", flat=True)
        .distinct()[:NEW_PER_PASS]
    )
    return sum(fire_streak(rule, schedule, now) for schedule in schedules)


def fire_streak(rule: AlertRule, schedule: str, now: datetime) -> int:
    """Fire when the schedule's last `threshold_count` final runs all failed, unless the rule
    already has an open alert for this schedule's streak. Checking for that open alert and
    inserting are one step under the rule's row lock, so two failures finishing at once on two
    workers open one streak alert, not two."""
    count = max(1, rule.threshold_count)
    with transaction.atomic():
        AlertRule.objects.select_for_update().filter(pk=rule.pk).values_list("pk").first()
        if Alert.objects.filter(
            rule=rule, schedule_name=schedule, resolved_at__isnull=True
        ).exists():
            return 0
        last = list(
            Run.objects.filter(schedule_name=schedule)
            .final()
            .only(*FIELDS)
            .order_by("-queued_at", "-id")[:count]
        )
        if len(last) < count or any(run.state not in FAILED_STATES for run in last):
            return 0
        newest = last[0]
        summary = f"Schedule {schedule} failed {count} time{'s' if count > 1 else ''} in a row"
        if newest.error:
            summary += f" (last: {first_line(newest.error)})"
        candidate = run_candidate(newest, summary, key=f"streak:{schedule}:{newest.task_id}")
        return fire(rule, [candidate], now)


def resolve_recovered(rule: AlertRule, now: datetime) -> int:
    """Resolve the rule's open alerts whose job (RUN_FAILED) or schedule (SCHEDULE_FAILING) has
    a successful run that finished after the failed one: one query per job or schedule."""
    by_job = rule.kind == AlertRuleKind.RUN_FAILED
    group = "job_name" if by_job else "schedule_name"
    open_alerts = Alert.objects.filter(rule=rule, resolved_at__isnull=True).values_list(
        "id", group, "run__finished_at", "fired_at"
    )[:OPEN_CHECKED]
    since: dict[str, list[tuple[int, datetime]]] = defaultdict(list)
    for pk, name, finished_at, fired_at in open_alerts:
        since[name].append((pk, finished_at or fired_at))
    recovered: list[int] = []
    for name, alerts in since.items():
        earliest = min(at for _, at in alerts)
        successes = Run.objects.filter(state=RunState.SUCCESS, finished_at__gt=earliest)
        filtered = (
            successes.filter(job_name=name) if by_job else successes.filter(schedule_name=name)
        )
        latest = filtered.aggregate(latest=Max("finished_at"))["latest"]
        if latest is not None:
            recovered.extend(pk for pk, at in alerts if at < latest)
    if not recovered:
        return 0
    return resolve(Alert.objects.filter(pk__in=recovered), now)


def failed_summary(run: Run) -> str:
    what = "was lost" if run.state == RunState.LOST else "failed"
    error = first_line(run.error)
    return f"{run.job_name} {what}: {error}" if error else f"{run.job_name} {what}"
