"""Rule evaluation: the worker's hook on failures, and the periodic pass over every rule.

`on_run_final` is called by the worker runtime the moment a run becomes FAILURE or LOST, so a
failure alert goes out within seconds; it costs a successful run nothing (it is never called
for one) and a failed run one query when no failure rule is enabled. `evaluate_all` is the
built-in job `taskdeck.evaluate_alerts` (every 15 s): deadlines, missed schedules, failures the
hook missed, resolutions, and the messages throttled rules held back.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from ..models import FAILED_STATES, AlertRule, AlertRuleKind, Run
from . import deadlines, failures, messages, missed

logger = logging.getLogger(__name__)

FAILURE_KINDS = (AlertRuleKind.RUN_FAILED, AlertRuleKind.SCHEDULE_FAILING)

# For each kind: what fires its alerts in a periodic pass, and what resolves them.
Step = Callable[[AlertRule, datetime], int]
STEPS: dict[str, tuple[Step, Step]] = {
    AlertRuleKind.RUN_FAILED: (failures.catch_up, failures.resolve_recovered),
    AlertRuleKind.SCHEDULE_FAILING: (failures.catch_up, failures.resolve_recovered),
    AlertRuleKind.QUEUED_TOO_LONG: (deadlines.fire_late, deadlines.resolve_on_time),
    AlertRuleKind.RUNNING_TOO_LONG: (deadlines.fire_late, deadlines.resolve_on_time),
    AlertRuleKind.SCHEDULE_MISSED: (missed.fire_missed, missed.resolve_fired),
}


def on_run_final(task_id: str, state: str) -> None:
    """Called by the worker runtime right after a run became FAILURE or LOST. Inside a
    transaction it waits for the commit (it must see the run final, and must not break the
    caller's transaction); it never raises into the worker."""
    if state not in FAILED_STATES:
        return
    try:
        transaction.on_commit(functools.partial(_alert_on_failure, task_id))
    except Exception:
        logger.exception("Could not evaluate alert rules for failed run %s", task_id)


def _alert_on_failure(task_id: str) -> None:
    try:
        rules = list(AlertRule.objects.filter(enabled=True, kind__in=FAILURE_KINDS))
        if not rules:
            return
        run = Run.objects.filter(task_id=task_id).only(*failures.FIELDS).first()
        if run is None:
            return
        now = timezone.now()
        for rule in rules:
            if failures.fire_for_run(rule, run, now):
                messages.announce_fired(rule.pk, now)
    except Exception:
        # The periodic pass catches up on this run within its window.
        logger.exception("Could not evaluate alert rules for failed run %s", task_id)


def evaluate_all(now: datetime | None = None) -> dict[str, int]:
    """One pass of every enabled rule (deadlines, missed schedules, streaks), resolutions and
    throttled messages; returns counts for the job's result. A rule that fails to evaluate is
    logged and counted; the others still run."""
    now = now or timezone.now()
    counts: Counter[str] = Counter(rules=0, fired=0, resolved=0, messages=0, errors=0)
    for rule in AlertRule.objects.filter(enabled=True).order_by("pk"):
        counts["rules"] += 1
        try:
            fire, resolve = STEPS[rule.kind]
            counts["fired"] += fire(rule, now)
            counts["resolved"] += resolve(rule, now)
            counts["messages"] += len(messages.announce_fired(rule.pk, now))
            counts["messages"] += messages.announce_resolved(rule.pk, now) is not None
        except Exception:
            counts["errors"] += 1
            logger.exception("Could not evaluate alert rule %r", rule.name)
    return dict(counts)
