"""Built-in jobs. Celery's autodiscovery imports this module in every worker and in beat."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from annotated_types import Ge, Le, MaxLen
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db.models import QuerySet
from django.utils import timezone
from django_celery_results.models import TaskResult

from .alerts import delivery, evaluate
from .exports import SafeCsvWriter
from .jobs.context import JobContext
from .jobs.errors import BadInput
from .jobs.params import Param
from .jobs.registry import find_job, job, masked_params
from .metrics import rollup
from .models import Alert, AlertMessage, JobHourStats, Run, RunState
from .selectors import RunFilter, runs_matching
from .services import bulk_operations
from .worker import reaper

if settings.TASKDECK_DEMO_JOBS:
    from . import demo  # noqa: F401 - registers demo.progress and demo.flaky


@job(name="taskdeck.ping", title="Ping", queue="high", retry="no_retry")
def ping(ctx: JobContext) -> str:
    """Answer "pong": proves the broker, a worker and the result store work end to end."""
    return "pong"


@job(
    name="taskdeck.reap_lost_runs",
    title="Reap lost runs",
    queue="high",
    retry="no_retry",
    ledger=False,  # every 30 s: recording each would bury the history; verdicts are audited
)
def reap_lost_runs(ctx: JobContext) -> dict[str, int]:
    """Mark runs whose worker stopped sending heartbeats as lost (or re-queue idempotent ones)."""
    outcome = reaper.reap()
    return {"lost": len(outcome.lost), "requeued": len(outcome.requeued)}


@job(
    name="taskdeck.evaluate_alerts",
    title="Evaluate alert rules",
    queue="high",
    retry="no_retry",
    ledger=False,  # every 15 s, like the reaper; what it finds is on the Alerts page
)
def evaluate_alerts(ctx: JobContext) -> dict[str, Any]:
    """Check deadlines, missed schedules and failing streaks; resolve what recovered; send the
    messages throttled rules held back."""
    return evaluate.evaluate_all()


@job(
    name="taskdeck.deliver_alerts",
    title="Deliver alert messages",
    queue="high",
    retry="no_retry",
    ledger=False,  # each attempt is in the delivery log on the Alerts page
)
def deliver_alerts(ctx: JobContext) -> dict[str, Any]:
    """Send pending alert messages to their channels (email, webhook), retrying with backoff."""
    return delivery.deliver_due()


@job(
    name="taskdeck.roll_up_stats",
    title="Roll up run statistics",
    queue="high",
    retry="no_retry",
    ledger=False,  # every 30 s; feeds /metrics and the job pages' numbers
)
def roll_up_stats(ctx: JobContext) -> dict[str, int]:
    """Count runs finished since the last pass into the per-hour and all-time stats."""
    return {"counted": rollup.roll_up()}


@job(
    name="taskdeck.cleanup",
    title="Clean up old runs",
    queue="low",
    unique=True,
    permission="tasks_app.run_cleanup",  # deletes history: not for everyone who may launch
)
def cleanup(
    ctx: JobContext,
    days: Annotated[int, Ge(1), Param(help="Delete finished runs older than this many days.")] = 30,
    failed_days: Annotated[
        int, Ge(1), Param(help="Keep failed and lost runs this many days instead.")
    ] = 90,
    batch_size: Annotated[int, Ge(100), Le(10_000), Param(help="Rows deleted per batch.")] = 1000,
) -> dict[str, int]:
    """Delete old runs and their results in batches, keeping failures longer."""
    now = timezone.now()
    failed = [RunState.FAILURE, RunState.LOST]
    old_runs = Run.objects.filter(finished_at__lt=now - timedelta(days=days)).exclude(
        state__in=failed
    ) | Run.objects.filter(finished_at__lt=now - timedelta(days=failed_days), state__in=failed)
    old_results = TaskResult.objects.filter(
        date_done__lt=now - timedelta(days=days), status__in=["SUCCESS", "REVOKED"]
    ) | TaskResult.objects.filter(date_done__lt=now - timedelta(days=failed_days), status="FAILURE")
    # Alert history goes with the failures it is about; open alerts stay whatever their age.
    # Deleting a message deletes its deliveries (CASCADE); hour stats past the longest window
    # any page shows are folded into JobTotals already.
    old_alerts = Alert.objects.filter(resolved_at__lt=now - timedelta(days=failed_days))
    old_messages = AlertMessage.objects.filter(
        created_at__lt=now - timedelta(days=failed_days)
    ).exclude(
        # Not NULL: a held-back alert has none, and NOT IN (..., NULL) would match nothing.
        pk__in=Alert.objects.filter(resolved_at__isnull=True, fired_message__isnull=False).values(
            "fired_message"
        )
    )
    old_stats = JobHourStats.objects.filter(hour__lt=now - timedelta(days=failed_days))
    tables: tuple[tuple[str, QuerySet[Any]], ...] = (
        ("runs", old_runs),
        ("results", old_results),
        ("alerts", old_alerts),
        ("alert_messages", old_messages),
        ("hour_stats", old_stats),
    )
    for label, queryset in tables:
        while True:
            batch = list(queryset.values_list("pk", flat=True)[:batch_size])
            if not batch:
                break
            if label == "runs":
                _delete_artifacts(batch)
            queryset.model._default_manager.filter(pk__in=batch).delete()
            ctx.count(f"deleted_{label}", len(batch))
            ctx.progress(ctx.counters[f"deleted_{label}"], None, f"Deleted {label}")
    return {"days": days, "failed_days": failed_days}


def _delete_artifacts(run_ids: list[int]) -> None:
    for run in Run.objects.filter(pk__in=run_ids).exclude(artifact="").only("artifact"):
        run.artifact.delete(save=False)


@job(
    name=bulk_operations.JOB_NAME,
    title="Bulk operation on runs",
    queue="default",
    retry="no_retry",
    unique=True,  # one job per operation at a time, whatever its batch size
    unique_key=lambda params: f"bulk_operation:{params['operation_id']}",
    # Safe to run again: it resumes after the last committed batch (services.bulk_operations),
    # so a worker lost mid-way has it re-queued instead of leaving it half done.
    idempotent=True,
)
def bulk_operation(
    ctx: JobContext,
    operation_id: Annotated[int, Ge(1), Param(help="The bulk operation to carry out.")],
    batch_size: Annotated[
        int, Ge(1), Le(bulk_operations.MAX_BATCH_SIZE), Param(help="Runs per batch.")
    ] = bulk_operations.BATCH_SIZE,
) -> dict[str, Any]:
    """Retry or cancel every run a bulk operation matched, in batches, resuming after the last
    batch it committed if it was interrupted."""
    return bulk_operations.bulk_operation_work(ctx, operation_id, batch_size)


@job(
    name="taskdeck.send_email",
    title="Send an email",
    queue="default",
    permission="tasks_app.send_email",  # mail in the organisation's name
)
def send_email(
    ctx: JobContext,
    to: Annotated[
        list[str],
        MaxLen(settings.TASKDECK_EMAIL_MAX_RECIPIENTS),  # checked at launch, schedule and API
        Param(help=f"One address per line (at most {settings.TASKDECK_EMAIL_MAX_RECIPIENTS})."),
    ],
    subject: Annotated[str, Param(help="The subject line.")],
    body: str = "",
) -> dict[str, Any]:
    """Send a plain-text email with Django's mail settings (console backend by default)."""
    if not to:
        raise BadInput("Give at least one recipient.")
    for address in to:
        try:
            validate_email(address)
        except ValidationError:
            raise BadInput(f"{address!r} is not an email address.") from None
    sent = send_mail(subject, body, None, to)
    ctx.log(f"Sent to {len(to)} recipient(s).")
    return {"sent": sent, "recipients": len(to)}


EXPORT_COLUMNS = [
    "task_id", "job", "state", "source", "launched_by", "schedule", "queue", "queued_at",
    "started_at", "finished_at", "duration_seconds", "attempts", "retry_of", "error", "params",
]  # fmt: skip


@job(name="taskdeck.export_runs", title="Export runs to CSV", queue="low")
def export_runs(
    ctx: JobContext,
    states: Annotated[list[RunState], Param(help="Only runs in these states (none: all).")] = [],  # noqa: B006
    job_name: Annotated[str, Param(label="Job", help="Only runs of this job.")] = "",
    since: Annotated[date | None, Param(help="Queued on or after this day.")] = None,
    until: Annotated[date | None, Param(help="Queued before this day.")] = None,
) -> dict[str, Any]:
    """Write the runs matching a filter to a CSV file kept as this run's artifact."""
    filters = RunFilter(
        states=tuple(state.value for state in states),
        job_name=job_name,
        since=_day_start(since),
        until=_day_start(until),
    )
    runs = runs_matching(filters).select_related("retry_of").order_by("-queued_at", "-id")
    total = runs.count()
    out = io.StringIO()
    writer = SafeCsvWriter(out)  # no cell a spreadsheet would run as a formula
    writer.writerow(EXPORT_COLUMNS)
    for done, run in enumerate(runs.iterator(chunk_size=2000), start=1):
        writer.writerow(_export_row(run))
        ctx.progress(done, total, f"Exported {done} of {total}")
    ctx.count("exported", total)
    name = ctx.save_artifact(f"runs-{timezone.now():%Y%m%d-%H%M%S}.csv", out.getvalue().encode())
    return {"rows": total, "file": name.rsplit("/", 1)[-1]}


def _day_start(day: date | None) -> datetime | None:
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day, time.min))


# The file is this run's artifact, which every staff user may download: a job that asks for a
# permission to read its runs keeps its runs' error and parameters out of it, whoever exports.
RESTRICTED_CELL = "(hidden: needs this job's permission)"


def _restricted(job_name: str) -> bool:
    spec = find_job(job_name)
    return spec is not None and bool(spec.permission)


def _export_row(run: Run) -> list[Any]:
    if _restricted(run.job_name):
        error, params = (RESTRICTED_CELL if run.error else ""), RESTRICTED_CELL
    else:
        error = run.error
        params = json.dumps(masked_params(run.job_name, run.params), sort_keys=True)
    duration = (
        (run.finished_at - run.started_at).total_seconds()
        if run.finished_at and run.started_at
        else ""
    )
    return [
        run.task_id, run.job_name, run.state, run.source, run.actor_label, run.schedule_name,
        run.queue, _iso(run.queued_at), _iso(run.started_at), _iso(run.finished_at), duration,
        run.attempts, run.retry_of.task_id if run.retry_of else "", error, params,
    ]  # fmt: skip


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""
