"""SCHEDULE_MISSED: an enabled schedule that did not fire when due (beat down, or stuck).

A schedule is due at its next fire time after its last run, or, if it never ran (or was edited
or re-enabled since), after it was last changed: what beat itself does (django-celery-beat
counts a fresh row from its last change). The times come from the same forecast the schedules
page shows. Once that due time plus the rule's grace has passed while `last_run_at` is still
before it, the schedule missed it: one alert per schedule and due time. It resolves when beat
records a run at or after the due time, or when the schedule is paused or deleted.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django_celery_beat.models import PeriodicTask

from ..models import Alert, AlertRule
from ..schedules.forecast import forecast
from ..schedules.rows import definition_of
from .firing import NEW_PER_PASS, Candidate, duration, fire, resolve

# Schedules looked at per rule per pass.
SCHEDULES_CHECKED = 2000
OPEN_CHECKED = 1000


def due_time(task: PeriodicTask) -> datetime | None:
    """When beat should fire the schedule next, counting from its last run or its last change,
    whichever is later; None if it never will (paused, expired, a one-off that ran)."""
    since = task.date_changed
    if task.last_run_at is not None and (since is None or task.last_run_at > since):
        since = task.last_run_at
    upcoming = forecast(
        definition_of(task),
        last_run_at=task.last_run_at,
        ran=task.total_run_count > 0,
        changed_at=task.date_changed,
        count=1,
        now=since,
    )
    return upcoming.times[0].at if upcoming.times else None


def fire_missed(rule: AlertRule, now: datetime) -> int:
    if rule.threshold_seconds is None:
        return 0
    grace = timedelta(seconds=rule.threshold_seconds)
    tasks = PeriodicTask.objects.filter(enabled=True).select_related(
        "interval", "crontab", "clocked", "solar"
    )
    if rule.schedule_name:
        tasks = tasks.filter(name=rule.schedule_name)
    if rule.job_name:
        tasks = tasks.filter(task=rule.job_name)
    candidates: list[Candidate] = []
    for task in tasks.order_by("name")[:SCHEDULES_CHECKED]:
        due = due_time(task)
        if due is None or due + grace > now:
            continue
        if task.last_run_at is not None and task.last_run_at >= due:
            continue
        due_utc = due.astimezone(UTC)
        candidates.append(
            Candidate(
                key=f"missed:{task.name}:{due_utc.isoformat()}",
                summary=(
                    f"Schedule {task.name} did not fire when due at "
                    f"{due_utc:%Y-%m-%d %H:%M:%S} UTC (grace {duration(grace.total_seconds())})"
                ),
                job_name=task.task,
                schedule_name=task.name,
                details={"due": due_utc.isoformat(), "schedule_id": task.pk},
            )
        )
    keys = [candidate.key for candidate in candidates]
    known = set(Alert.objects.filter(rule=rule, key__in=keys).values_list("key", flat=True))
    new = [candidate for candidate in candidates if candidate.key not in known]
    return fire(rule, new[:NEW_PER_PASS], now)


def resolve_fired(rule: AlertRule, now: datetime) -> int:
    """Resolve the rule's open alerts whose schedule has run since (or is paused or gone)."""
    open_alerts = list(
        Alert.objects.filter(rule=rule, resolved_at__isnull=True)
        .order_by("fired_at", "id")  # oldest first: a backlog of new ones never hides them
        .values_list("id", "schedule_name", "details")[:OPEN_CHECKED]
    )
    if not open_alerts:
        return 0
    names = {name for _, name, _ in open_alerts}
    last_runs = dict(
        PeriodicTask.objects.filter(name__in=names, enabled=True).values_list("name", "last_run_at")
    )
    done = []
    for pk, name, details in open_alerts:
        if name not in last_runs:
            done.append(pk)  # paused or deleted: nothing is due any more
            continue
        last_run_at = last_runs[name]
        due = datetime.fromisoformat(str(details.get("due")))
        if last_run_at is not None and last_run_at >= due:
            done.append(pk)
    if not done:
        return 0
    return resolve(Alert.objects.filter(pk__in=done), now)
