"""One run: in full for its page and the API, or just the live region its page polls."""

import json
from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from ..jobs.registry import find_job, masked_params
from ..models import AuditEntry, Run, RunState
from .display import json_texts


@dataclass(frozen=True)
class Progress:
    done: int | None
    total: int | None
    message: str
    percent: int | None
    eta_seconds: int | None


def progress_of(run: Run) -> Progress:
    done, total = run.progress_done, run.progress_total
    percent = None
    eta = None
    if done is not None and total:
        percent = max(0, min(100, int(done * 100 / total)))
        if run.state == RunState.SUCCESS:
            percent = 100
        elif run.started_at and run.progress_at and done > 0:
            elapsed = (run.progress_at - run.started_at).total_seconds()
            eta = max(0, int(elapsed / done * (total - done)))
    elif run.state == RunState.SUCCESS:
        percent = 100
    return Progress(done, total, run.progress_message, percent, eta if run.is_active else None)


@dataclass(frozen=True)
class RunDetail:
    run: Run
    title: str
    params: dict[str, Any]  # sensitive values masked, for the API
    param_texts: list[tuple[str, str]]  # the same, each value as JSON text, for the page
    result: str | None  # pretty JSON, for the page
    result_data: Any  # the decoded value, for the API
    traceback: str
    progress: Progress
    chain: list[Run]
    retried_by: list[Run]
    audit: list[AuditEntry]
    duration_seconds: float | None
    schedule_id: int | None  # the schedule that fired it, while it exists


@dataclass(frozen=True)
class RunLive:
    """What the live region of a run's page needs: its poll reads one row."""

    run: Run
    progress: Progress


def run_live(task_id: str) -> RunLive | None:
    run = Run.objects.filter(task_id=task_id).defer("log", "args", "params").first()
    return None if run is None else RunLive(run, progress_of(run))


def run_detail(task_id: str) -> RunDetail | None:
    run = Run.objects.select_related("retry_of", "root").filter(task_id=task_id).first()
    if run is None:
        return None
    spec = find_job(run.job_name)
    stored = TaskResult.objects.filter(task_id=task_id).values("result", "traceback").first()
    result, result_data = None, None
    if stored and stored["result"] is not None and run.state == RunState.SUCCESS:
        result, result_data = _pretty_json(stored["result"])
    root_id = run.root_id or run.pk
    chain = list(
        Run.objects.filter(Q(pk=root_id) | Q(root_id=root_id))
        .order_by("queued_at", "id")
        .only("task_id", "state", "queued_at", "retry_of_id", "job_name")[:50]
    )
    duration = None
    if run.started_at and run.finished_at:
        duration = (run.finished_at - run.started_at).total_seconds()
    params = masked_params(run.job_name, run.params)
    return RunDetail(
        run=run,
        title=spec.title if spec else run.job_name,
        params=params,
        param_texts=json_texts(params),
        result=result,
        result_data=result_data,
        traceback=str(stored["traceback"] or "") if stored else "",
        progress=progress_of(run),
        chain=chain,
        retried_by=list(run.retried_by.order_by("queued_at").only("task_id", "state", "queued_at")),
        audit=list(
            AuditEntry.objects.filter(target_type="run", target_id=task_id).order_by("created_at")[
                :100
            ]
        ),
        duration_seconds=duration,
        schedule_id=_schedule_id(run.schedule_name),
    )


def _schedule_id(name: str) -> int | None:
    if not name:
        return None
    return PeriodicTask.objects.filter(name=name).values_list("pk", flat=True).first()


def _pretty_json(raw: str) -> tuple[str, Any]:
    """The stored JSON result indented for reading, and decoded."""
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        return raw, raw
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False), value
