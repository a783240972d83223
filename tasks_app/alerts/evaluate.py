"""Rule evaluation: the worker's hook on final runs, and the periodic pass over every rule.

`on_run_final` is called by the worker runtime the moment a run becomes final. A failure or a
lost run fires failure alerts within seconds, at one query when no failure rule is enabled. A
success resolves its job's open failure alerts just as fast, and costs nothing when it has none
to resolve (see `open_failures`: no query while that per-process cache is fresh). The hook never
raises into the worker. `evaluate_all` is the built-in job `taskdeck.evaluate_alerts` (every
15 s): deadlines, missed schedules, failures the hook missed, resolutions, and the messages
throttled rules held back; it then records when it ran (`RollupMark` "alerts_evaluated"), so
/metrics and the Alerts page can tell when evaluation (and beat, which schedules it) stopped.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..models import FAILED_STATES, AlertRule, AlertRuleKind, RollupMark, Run, RunState
from . import deadlines, failures, messages, missed
from .access import Access
from .open_failures import FAILURE_KINDS, open_failures

logger = logging.getLogger(__name__)

# The RollupMark row whose `upto` is the end of the last periodic pass.
EVALUATED_MARK = "alerts_evaluated"

# For each kind: what fires its alerts in a periodic pass, and what resolves them.
Fire = Callable[[AlertRule, datetime, Access], int]
Resolve = Callable[[AlertRule, datetime], int]


def _fire_missed(rule: AlertRule, now: datetime, access: Access) -> int:
    # A missed fire time is about a schedule, not a run: no run's details to keep from anyone.
    return missed.fire_missed(rule, now)


STEPS: dict[str, tuple[Fire, Resolve]] = {
    AlertRuleKind.RUN_FAILED: (failures.catch_up, failures.resolve_recovered),
    AlertRuleKind.SCHEDULE_FAILING: (failures.catch_up, failures.resolve_recovered),
    AlertRuleKind.QUEUED_TOO_LONG: (deadlines.fire_late, deadlines.resolve_on_time),
    AlertRuleKind.RUNNING_TOO_LONG: (deadlines.fire_late, deadlines.resolve_on_time),
    AlertRuleKind.SCHEDULE_MISSED: (_fire_missed, missed.resolve_fired),
}


def on_run_final(task_id: str, state: str, job_name: str | None = None) -> None:
    """Called by the worker runtime right after a run became final; `job_name`, when the caller
    has it, spares a success any query. The work waits for the caller's commit (it must see the
    run final, and must not break the caller's transaction); nothing raises into the worker."""
    try:
        if state in FAILED_STATES:
            transaction.on_commit(functools.partial(_alert_on_failure, task_id))
        elif state == RunState.SUCCESS and _may_resolve(job_name):
            transaction.on_commit(functools.partial(_resolve_on_success, task_id, job_name))
    except Exception:
        logger.exception("Could not evaluate alert rules for run %s (%s)", task_id, state)


def _may_resolve(job_name: str | None) -> bool:
    """False when the fresh cache says a success of this job has nothing to resolve (no
    query); a stale cache is read again after the commit, off the caller's transaction."""
    jobs = open_failures.cached()
    if jobs is None:
        return True
    return bool(jobs) and (job_name is None or job_name in jobs)


def _alert_on_failure(task_id: str) -> None:
    try:
        rules = list(
            AlertRule.objects.filter(enabled=True, kind__in=FAILURE_KINDS).select_related(
                "created_by"
            )
        )
        if not rules:
            return
        run = Run.objects.filter(task_id=task_id).only(*failures.FIELDS).first()
        if run is None:
            return
        now = timezone.now()
        access = Access()
        for rule in rules:
            if failures.fire_for_run(rule, run, now, access):
                open_failures.note(run.job_name)
                messages.announce_fired(rule.pk, now)
    except Exception:
        # The periodic pass catches up on this run within its window.
        logger.exception("Could not evaluate alert rules for failed run %s", task_id)


def _resolve_on_success(task_id: str, job_name: str | None) -> None:
    try:
        jobs = open_failures.jobs()  # one query if the cache went stale
        if not jobs or (job_name is not None and job_name not in jobs):
            return
        run = (
            Run.objects.filter(task_id=task_id, state=RunState.SUCCESS)
            .only("id", "job_name", "schedule_name", "queued_at")
            .first()
        )
        if run is None or run.job_name not in jobs:
            return
        now = timezone.now()
        for rule_id in sorted(failures.resolve_after_success(run, now)):
            messages.announce_resolved(rule_id, now)
    except Exception:
        # The periodic pass resolves them within 15 s.
        logger.exception("Could not resolve alerts after successful run %s", task_id)


def evaluate_all(now: datetime | None = None) -> dict[str, int]:
    """One pass of every enabled rule (deadlines, missed schedules, streaks), resolutions and
    throttled messages; returns counts for the job's result. A rule that fails to evaluate is
    logged and counted; the others still run. Ends by recording when it ran."""
    now = now or timezone.now()
    counts: Counter[str] = Counter(rules=0, fired=0, resolved=0, messages=0, errors=0)
    access = Access()
    for rule in AlertRule.objects.filter(enabled=True).select_related("created_by").order_by("pk"):
        counts["rules"] += 1
        try:
            fire, resolve = STEPS[rule.kind]
            counts["fired"] += fire(rule, now, access)
            counts["resolved"] += resolve(rule, now)
            counts["messages"] += len(messages.announce_fired(rule.pk, now))
            counts["messages"] += messages.announce_resolved(rule.pk, now) is not None
        except Exception:
            counts["errors"] += 1
            logger.exception("Could not evaluate alert rule %r", rule.name)
    RollupMark.objects.update_or_create(name=EVALUATED_MARK, defaults={"upto": timezone.now()})
    return dict(counts)
