"""RUN_FAILED and SCHEDULE_FAILING: alerts about runs that failed or were lost.

They fire from the worker's hook the moment a run fails (`fire_for_run`), and the periodic pass
catches up on failures the hook missed (a worker killed between the two, a hook error) within a
bounded window. They resolve when a later run of the same job (or schedule) succeeds: a
success queued after the failed run. The worker's hook resolves them the moment that success
is recorded (`resolve_after_success`); the periodic pass (`resolve_recovered`) catches up.
Both look for that success through the runs' (job_name | schedule_name, -queued_at, -id)
indexes, never a scan of the history.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, Min, OuterRef, Q
from django.db.models.functions import Coalesce

from ..models import FAILED_STATES, Alert, AlertRule, AlertRuleKind, Run, RunState
from .access import Access
from .firing import NEW_PER_PASS, fire, matches, matching_runs, resolve, run_candidate
from .messages import first_line

# The periodic pass looks back this far for failures the hook did not alert on.
CATCH_UP = timedelta(hours=1)
# Jobs (or schedules) with open alerts a pass checks for a recovery, per rule: those whose
# oldest open alert is oldest first. One query each, and it resolves all of that group's alerts.
GROUPS_CHECKED = 500

FIELDS = (
    "id", "task_id", "job_name", "schedule_name", "state", "queue", "error", "finished_at",
    "queued_at",
)  # fmt: skip


def fire_for_run(rule: AlertRule, run: Run, now: datetime, access: Access) -> int:
    """The hook's path: alert on this failed run if the rule takes it; returns alerts fired."""
    if run.state not in FAILED_STATES or not matches(rule, run, access):
        return 0
    if rule.kind == AlertRuleKind.RUN_FAILED:
        return fire(rule, [run_candidate(run, failed_summary(run))], now)
    if rule.kind == AlertRuleKind.SCHEDULE_FAILING and run.schedule_name:
        return fire_streak(rule, run.schedule_name, now, access)
    return 0


def catch_up(rule: AlertRule, now: datetime, access: Access) -> int:
    """The periodic pass: failures since the rule was created (at most CATCH_UP ago) that it
    has not alerted on yet."""
    since = max(now - CATCH_UP, rule.created_at)
    failed = matching_runs(rule, Run.objects.failed().filter(finished_at__gte=since), access)
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
    return sum(fire_streak(rule, schedule, now, access) for schedule in schedules)


def fire_streak(rule: AlertRule, schedule: str, now: datetime, access: Access) -> int:
    """Fire when the schedule's last `threshold_count` final runs the rule covers all failed,
    unless the rule already has an open alert for this schedule's streak. Checking for that
    open alert and inserting are one step under the rule's row lock, so two failures finishing
    at once on two workers open one streak alert, not two."""
    count = max(1, rule.threshold_count)
    with transaction.atomic():
        AlertRule.objects.select_for_update().filter(pk=rule.pk).values_list("pk").first()
        if Alert.objects.filter(
            rule=rule, schedule_name=schedule, resolved_at__isnull=True
        ).exists():
            return 0
        last = list(
            matching_runs(rule, Run.objects.filter(schedule_name=schedule).final(), access)
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
    a success queued after the failed run. Per job or schedule, oldest open alert first: one
    index lookup for its newest success, then one update for every alert that success covers."""
    group = "job_name" if rule.kind == AlertRuleKind.RUN_FAILED else "schedule_name"
    groups = (
        Alert.objects.filter(rule=rule, resolved_at__isnull=True)
        .values(group)
        .annotate(oldest=Min(Coalesce("run__queued_at", "fired_at")))
        .order_by("oldest", group)
        .values_list(group, "oldest")[:GROUPS_CHECKED]
    )
    resolved = 0
    for name, oldest in groups:
        success = latest_success(**{group: name}, after=oldest)
        if success is not None:
            open_alerts = Alert.objects.filter(rule=rule, **{group: name})
            resolved += resolve(open_alerts.filter(failed_before(success)), now)
    return resolved


def latest_success(*, after: datetime, **name: str) -> datetime | None:
    """When the newest successful run of the job (`job_name=`) or schedule (`schedule_name=`)
    queued after `after` was queued: a range of the (name, -queued_at, -id) index read from
    its newest end, stopping at the first success."""
    return (
        Run.objects.filter(state=RunState.SUCCESS, queued_at__gt=after, **name)
        .order_by("-queued_at", "-id")
        .values_list("queued_at", flat=True)
        .first()
    )


def failed_before(queued_at: datetime) -> Q:
    """Alerts about a run queued before `queued_at` (a deleted run's: fired before it)."""
    return Q(run__queued_at__lt=queued_at) | Q(run__isnull=True, fired_at__lt=queued_at)


def resolve_after_success(run: Run, now: datetime) -> set[int]:
    """The worker's path: resolve the open failure alerts of enabled rules that this successful
    run recovers (its job's RUN_FAILED alerts, its schedule's SCHEDULE_FAILING ones, about runs
    queued before it); returns the rules whose alerts it resolved."""
    recovered = Q(rule__kind=AlertRuleKind.RUN_FAILED, job_name=run.job_name)
    if run.schedule_name:
        recovered |= Q(rule__kind=AlertRuleKind.SCHEDULE_FAILING, schedule_name=run.schedule_name)
    found = dict(
        Alert.objects.filter(recovered, resolved_at__isnull=True, rule__enabled=True)
        .filter(failed_before(run.queued_at))
        .values_list("id", "rule_id")
    )
    if found:
        resolve(Alert.objects.filter(pk__in=list(found)), now)  # only those still open
    return set(found.values())


def failed_summary(run: Run) -> str:
    what = "was lost" if run.state == RunState.LOST else "failed"
    error = first_line(run.error)
    return f"{run.job_name} {what}: {error}" if error else f"{run.job_name} {what}"
