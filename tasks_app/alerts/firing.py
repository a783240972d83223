"""Firing and resolving alerts, the same way for every kind of rule.

An alert is created by a conditional insert: the database's (rule, key) constraint, not a
check-then-insert, decides whether it is new, so an evaluation that runs twice (or on two
workers at once) fires once. The queries that pick candidates leave out what already fired only
to save work; the constraint is what makes it right.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet

from ..models import Alert, AlertRule, Run, RunState
from .access import Access
from .messages import first_line

# At most this many new alerts per rule per pass (the rest fire in the next pass).
NEW_PER_PASS = 200


@dataclass(frozen=True)
class Candidate:
    """An alert a rule would fire, if its key is new for the rule."""

    key: str
    summary: str
    run: Run | None = None
    job_name: str = ""
    schedule_name: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def fire(rule: AlertRule, candidates: Iterable[Candidate], now: datetime) -> int:
    """Insert each candidate's alert unless the rule already has its key; returns how many are
    new. Each insert is its own savepoint, so a conflict (another evaluation won) undoes only
    that one."""
    fired = 0
    for candidate in candidates:
        try:
            with transaction.atomic():
                Alert.objects.create(
                    rule=rule,
                    key=candidate.key,
                    run=candidate.run,
                    job_name=candidate.job_name,
                    schedule_name=candidate.schedule_name,
                    summary=candidate.summary[:500],
                    details=candidate.details,
                    fired_at=now,
                )
        except IntegrityError:
            continue  # fired already: by an earlier pass or by a concurrent one
        fired += 1
    return fired


def resolve(alerts: QuerySet[Alert], now: datetime) -> int:
    """Mark these alerts resolved (those still firing); returns how many."""
    return alerts.filter(resolved_at__isnull=True).update(resolved_at=now)


def run_key(run: Run) -> str:
    return f"run:{run.task_id}"


def run_details(run: Run) -> dict[str, Any]:
    """What an alert keeps about its run (the run may be deleted later). Never its parameters:
    they may be secret."""
    details: dict[str, Any] = {"task_id": run.task_id, "state": run.state, "queue": run.queue}
    if run.error and run.state not in {RunState.SUCCESS, RunState.PENDING}:
        details["error"] = first_line(run.error)
    return details


def run_candidate(run: Run, summary: str, *, key: str | None = None) -> Candidate:
    return Candidate(
        key=key or run_key(run),
        summary=summary,
        run=run,
        job_name=run.job_name,
        schedule_name=run.schedule_name,
        details=run_details(run),
    )


def matching_runs(rule: AlertRule, runs: QuerySet[Run], access: Access) -> QuerySet[Run]:
    """The runs the rule's job and schedule filters take (empty filters take any), less those
    of jobs its creator may not read."""
    if rule.job_name:
        runs = runs.filter(job_name=rule.job_name)
    if rule.schedule_name:
        runs = runs.filter(schedule_name=rule.schedule_name)
    hidden = access.hidden_jobs(rule)
    if hidden:
        runs = runs.exclude(job_name__in=sorted(hidden))
    return runs


def matches(rule: AlertRule, run: Run, access: Access) -> bool:
    """`matching_runs` for one run in hand."""
    return (
        (not rule.job_name or run.job_name == rule.job_name)
        and (not rule.schedule_name or run.schedule_name == rule.schedule_name)
        and access.may_cover(rule, run.job_name)
    )


def duration(seconds: float) -> str:
    """A deadline in words: "90 s", "5 min", "2 h 30 min"."""
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
