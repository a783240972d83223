"""Schedules: list, create, read, change, delete, and run one now. Each has a missed-run policy
(`missed_policy`, `missed_cap`), read and written with the rest of it."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from typing import Any

from django.http import HttpRequest
from django_celery_beat.models import PeriodicTask
from ninja import Query, Router, Schema, Status
from pydantic import Field

from .. import selectors, services
from ..jobs.registry import MASK, find_job, masked_params
from ..schedules.definition import Kind, ScheduleDefinition, Timing, definition_of
from ..schedules.missed import DEFAULT, MissedRuns, missed_runs_for, with_missed
from ..selectors import ScheduleRow
from ..selectors.schedules import SCHEDULE_PAGE_SIZE, decode_schedule_cursor, schedules_page
from .auth import actor
from .errors import ApiError, field_errors, refuse_sealed_input, responses
from .runs import run_out
from .schemas import (
    NO_BODY,
    In,
    RunOut,
    ScheduleIn,
    ScheduleOut,
    SchedulePatchIn,
    TimingIn,
)

router = Router(tags=["schedules"])

TIMING_FIELDS = frozenset({"kind", "cron", "timezone", "every", "period", "run_at"})


def schedule_out(
    row: ScheduleRow, unreadable_jobs: Collection[str], missed: MissedRuns | None = None
) -> dict[str, Any]:
    """A schedule as the API shows it to a caller who may not read the runs (so not the
    parameters) of `unreadable_jobs` (services.unreadable_jobs); `missed`, its missed-run
    policy, if already read (with those of a whole page)."""
    task = row.task
    if missed is None:
        missed = missed_runs_for([task.pk]).get(task.pk, DEFAULT)
    hidden = task.task in unreadable_jobs
    timing = row.timing
    params = definition_of(task).params
    last = row.last_run
    return {
        "id": task.pk,
        "name": task.name,
        "job": task.task,
        "params": {} if hidden else masked_params(task.task, params),
        "params_hidden": hidden,
        "timing": {
            "kind": timing.kind.value,
            "cron": timing.cron,
            "timezone": timing.timezone,
            "every": timing.every,
            "period": timing.period,
            "run_at": timing.run_at,
            "words": row.words,
        },
        "description": task.description,
        "enabled": task.enabled,
        "start_time": task.start_time,
        "expires": task.expires,
        "one_off": task.one_off,
        "queue": task.queue or "",
        "declared": row.declaration.origin if row.declaration is not None else None,
        "edited": row.edited,
        "next_fire_times": [t.at for t in row.upcoming.times],
        "last_run": (
            {"task_id": last.task_id, "state": last.state, "queued_at": last.queued_at}
            if last is not None
            else None
        ),
        "last_fired_at": task.last_run_at,
        "total_run_count": task.total_run_count,
        "missed_policy": missed.policy,
        "missed_cap": missed.cap,
    }


def _out(request: HttpRequest, pk: int) -> dict[str, Any]:
    unreadable = services.unreadable_jobs(actor(request))
    detail = selectors.schedule_detail(pk, unreadable_jobs=unreadable)
    if detail is None:
        raise ApiError(404, f"No schedule {pk}.")
    return schedule_out(detail.row, unreadable)


def _task(pk: int) -> PeriodicTask:
    task: PeriodicTask | None = PeriodicTask.objects.filter(pk=pk).first()
    if task is None:
        raise ApiError(404, f"No schedule {pk}.")
    return task


def _timing(data: TimingIn) -> Timing:
    return Timing(
        kind=Kind(data.kind),
        cron=" ".join(data.cron.split()),
        timezone=data.timezone,
        every=data.every,
        period=data.period,
        run_at=data.run_at,
    )


def _keep_secrets(
    params: dict[str, Any], job: str, stored: ScheduleDefinition | None
) -> dict[str, Any]:
    """A masked value sent back (as GET shows it) keeps the stored secret."""
    spec = find_job(job)
    if spec is None or stored is None or stored.job != job:
        return params
    kept = dict(params)
    for name in spec.sensitive:
        if kept.get(name) == MASK and name in stored.params:
            kept[name] = stored.params[name]
    return kept


def _save(
    definition: ScheduleDefinition, request: HttpRequest, task: PeriodicTask | None
) -> PeriodicTask:
    try:
        return services.schedule_save(definition, actor=actor(request), task=task)
    except services.InvalidSchedule as error:
        errors = {
            f"timing.{name}" if name in TIMING_FIELDS else name: [message]
            for name, message in error.errors.items()
        }
        raise ApiError(400, "Invalid schedule.", errors) from None
    except services.ParamsError as error:
        raise ApiError(400, "Invalid parameters.", field_errors("params", error.errors)) from None


class ScheduleQuery(In):
    cursor: str | None = None
    limit: int = SCHEDULE_PAGE_SIZE


class SchedulePageOut(Schema):
    """A page of schedules by name; the same envelope as `GET /runs`."""

    items: list[ScheduleOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


@router.get("/schedules", response=responses({200: SchedulePageOut}), summary="Schedules")
def schedules(request: HttpRequest, query: Query[ScheduleQuery]) -> dict[str, Any]:
    """Schedules by name, a page at a time (`limit`, 1 to 200; `next_cursor`)."""
    if not 1 <= query.limit <= 200:
        raise ApiError(400, "Invalid limit.", {"limit": ["Between 1 and 200."]})
    if query.cursor and decode_schedule_cursor(query.cursor) is None:
        raise ApiError(400, "Invalid cursor.", {"cursor": ["Not a cursor from this API."]})
    page = schedules_page(query.cursor, size=query.limit)
    unreadable = services.unreadable_jobs(actor(request))
    policies = missed_runs_for([row.task.pk for row in page.rows])
    items = [schedule_out(row, unreadable, policies.get(row.task.pk, DEFAULT)) for row in page.rows]
    return {"items": items, "next_cursor": page.next_cursor}


@router.post("/schedules", response=responses({201: ScheduleOut}), summary="Create a schedule")
def create(request: HttpRequest, body: ScheduleIn) -> Status[dict[str, Any]]:
    refuse_sealed_input(body.params)
    definition = ScheduleDefinition(
        name=body.name,
        job=body.job,
        timing=_timing(body.timing),
        params=body.params,
        description=body.description,
        enabled=body.enabled,
        start_time=body.start_time,
        expires=body.expires,
        one_off=body.one_off,
        queue=body.queue,
    )
    missed = MissedRuns(body.missed_policy, body.missed_cap)
    task = _save(with_missed(definition, missed), request, None)
    return Status(201, _out(request, task.pk))


@router.get("/schedules/{pk}", response=responses({200: ScheduleOut}, 404), summary="One schedule")
def schedule(request: HttpRequest, pk: int) -> dict[str, Any]:
    return _out(request, pk)


@router.patch(
    "/schedules/{pk}", response=responses({200: ScheduleOut}, 404), summary="Change a schedule"
)
def change(request: HttpRequest, pk: int, body: SchedulePatchIn) -> dict[str, Any]:
    task = _task(pk)
    stored = definition_of(task)
    given = body.model_dump(exclude_unset=True)
    missed = {k: given.pop(k) for k in ("missed_policy", "missed_cap") if k in given}
    changes: dict[str, Any] = {k: v for k, v in given.items() if k not in ("timing", "params")}
    if body.timing is not None:
        changes["timing"] = _timing(body.timing)
    job = changes.get("job") or stored.job
    if body.params is not None:
        refuse_sealed_input(body.params, stored.params if stored.job == job else None)
        changes["params"] = _keep_secrets(body.params, job, stored)
    elif job != stored.job:
        changes["params"] = {}  # another job: its own defaults, not the old job's values
    for key in ("name", "description", "queue", "job"):
        if changes.get(key) is None:
            changes.pop(key, None)
    if given.get("enabled") is None:
        changes.pop("enabled", None)
    if given.get("one_off") is None:
        changes.pop("one_off", None)
    definition = replace(stored, **changes)
    if any(value is not None for value in missed.values()):
        before = missed_runs_for([task.pk]).get(task.pk, DEFAULT)
        policy = missed.get("missed_policy") or before.policy
        cap = missed.get("missed_cap")
        definition = with_missed(definition, MissedRuns(policy, before.cap if cap is None else cap))
    saved = _save(definition, request, task)
    return _out(request, saved.pk)


@router.delete(
    "/schedules/{pk}", response=responses({204: None}, 404, 409), summary="Delete a schedule"
)
def delete(request: HttpRequest, pk: int) -> Status[None]:
    try:
        services.schedule_delete(_task(pk), actor=actor(request))
    except services.ServiceError as error:
        raise ApiError(409, str(error)) from None
    return Status(204, None)


@router.post(
    "/schedules/{pk}/run",
    response=responses({201: RunOut}, 404, 409, 503),
    summary="Run a schedule's job now, with its parameters",
    openapi_extra=NO_BODY,
)
def run_now(request: HttpRequest, pk: int) -> Status[dict[str, Any]]:
    try:
        run = services.schedule_run_now(_task(pk), actor=actor(request))
    except services.ParamsError as error:
        detail = "The schedule's parameters are not valid for its job."
        raise ApiError(409, detail, field_errors("params", error.errors)) from None
    return Status(201, run_out(run.task_id))
