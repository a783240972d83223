"""The API's request and response bodies (pydantic, via django-ninja), and the converters from
the selectors' results. Every input refuses unknown fields."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from django.conf import settings
from ninja import Schema
from pydantic import AfterValidator, AwareDatetime, BeforeValidator, ConfigDict, Field

from ..models import Run, RunSource, RunState
from ..schedules.missed import CAP_MAX, CAP_MIN, DEFAULT

StateName = Literal[
    "PENDING", "STARTED", "PROGRESS", "RETRY", "SUCCESS", "FAILURE", "REVOKED", "LOST"
]
SourceName = Literal["form", "api", "schedule", "code", "retry"]
KindName = Literal["crontab", "interval", "one_off"]
PeriodName = Literal["seconds", "minutes", "hours", "days"]

assert set(StateName.__args__) == set(RunState.values)  # type: ignore[attr-defined]
assert set(SourceName.__args__) == set(RunSource.values)  # type: ignore[attr-defined]


_ISO_8601 = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def _iso_text(value: Any) -> Any:
    """Pydantic would also read numbers (and numeric text) as Unix times; the document says
    ISO 8601, so that is all we take."""
    if isinstance(value, str) and not _ISO_8601.match(value):
        raise ValueError("Give an ISO 8601 date and time with a zone, e.g. 2026-12-01T09:00Z.")
    if not isinstance(value, str | datetime):
        raise ValueError("Give an ISO 8601 date and time with a zone, e.g. 2026-12-01T09:00Z.")
    return value


def _in_utc(value: datetime) -> datetime:
    """Times are stored and compared in UTC: one that has no UTC value (a time on 1 January
    of the year 1, or 31 December 9999, with an offset that moves it out of range) is refused.
    The UTC value is what goes on: PostgreSQL refuses offsets beyond ±15:59, which ISO allows."""
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("The time is out of range once converted to UTC.") from None


# An input time: ISO 8601 text with a time zone (a naive time is refused, not guessed).
Moment = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_in_utc)]


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("Null characters are not allowed.")
    return value


# Input text: PostgreSQL can neither store nor compare with NUL characters, so they are
# refused (as Django's form fields refuse them).
Text = Annotated[str, AfterValidator(_no_nul)]


class In(Schema):
    model_config = ConfigDict(extra="forbid")


# The documented body of an operation that takes none: nothing, or `{}` (which many clients
# send with a POST); anything else is a 400 (api.app._strict_input).
NO_BODY: dict[str, Any] = {
    "requestBody": {
        "required": False,
        "content": {
            "application/json": {"schema": {"type": "object", "additionalProperties": False}}
        },
    }
}


# --- errors ----------------------------------------------------------------------------------


class ErrorOut(Schema):
    detail: str
    errors: dict[str, list[str]] = Field(
        default_factory=dict, description="Messages by field, e.g. `params.steps`."
    )


# --- jobs ------------------------------------------------------------------------------------


class JobOut(Schema):
    name: str
    title: str
    description: str
    queue: str
    retry: str
    unique: bool
    idempotent: bool
    sensitive: list[str]
    can_launch: bool
    params_schema: dict[str, Any] = Field(
        description="JSON Schema of `params` (the launch form is generated from the same)."
    )


# --- runs ------------------------------------------------------------------------------------


class LaunchOptionsIn(In):
    queue: Text | None = Field(default=None, max_length=64)
    countdown: float | None = Field(default=None, description="Seconds to wait before running.")
    eta: Moment | None = Field(default=None, description="Run at (with a time zone).")
    priority: int | None = None


class RunCreateIn(In):
    job: Text = Field(max_length=255)
    params: dict[str, Any] = Field(default_factory=dict)
    options: LaunchOptionsIn = Field(default_factory=LaunchOptionsIn)


class BatchItemIn(In):
    params: dict[str, Any] = Field(default_factory=dict)


class RunBatchIn(In):
    job: Text = Field(max_length=255)
    # The cap is TASKDECK_BULK_LIMIT, checked when the request runs (services.jobs_launch_many,
    # a 400 naming `items`), so it follows the setting; the document shows its value.
    items: list[BatchItemIn] = Field(
        description="One run per item, in this order.",
        json_schema_extra={"minItems": 1, "maxItems": settings.TASKDECK_BULK_LIMIT},
    )
    options: LaunchOptionsIn = Field(
        default_factory=LaunchOptionsIn, description="The same for every run."
    )


class ProgressOut(Schema):
    percent: int | None
    done: int | None
    total: int | None
    message: str
    eta_seconds: int | None


class RunSummaryOut(Schema):
    # A run is named by its task id everywhere (paths, retry_of, root, retried_by, bulk
    # retries): the ledger's integer key is not part of the API.
    task_id: str = Field(description="The run's id: `GET runs/{task_id}`.")
    job: str
    state: StateName
    source: SourceName
    launched_by: str
    schedule: str
    queue: str
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunOut(RunSummaryOut):
    params: dict[str, Any] = Field(description="Sensitive values masked.")
    args: list[Any]
    priority: int | None
    eta: datetime | None
    worker: str
    attempts: int
    retries: int
    duration_seconds: float | None
    progress: ProgressOut
    result: Any = Field(default=None, description="The job's return value, once succeeded.")
    error: str
    traceback: str
    retry_of: str | None
    root: str | None
    retried_by: list[str]
    cancel_requested_at: datetime | None
    cancel_requested_by: str


class RunPageOut(Schema):
    items: list[RunSummaryOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next (older) page.")


class RunBatchOut(Schema):
    count: int
    runs: list[RunSummaryOut] = Field(description="One per item, in the request's order.")


class BatchUnavailableOut(ErrorOut):
    queued: list[str] = Field(
        default_factory=list,
        description=(
            "Task ids of the runs queued before the broker failed: the first items, in order "
            "(empty: nothing was queued). The other items were not; send them again."
        ),
    )


class CancelIn(In):
    terminate: bool = Field(default=False, description="Kill the process running it now.")


class RetryIn(In):
    params: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Run again with these parameters changed: merged over the original's and validated "
            "as a launch's (a 400 names `params.<name>`; nothing is queued). A sensitive "
            "parameter left out, or sent as the mask answers show, keeps the original's value. "
            "Any finished run, a successful one too, may be run again this way."
        ),
    )


class CancelOut(Schema):
    outcome: str
    run: RunOut


class RunFilterIn(In):
    state: list[StateName] = Field(default_factory=list)
    job: Text = Field(default="", max_length=255)
    source: SourceName | Literal[""] = ""
    launched_by: Text = Field(default="", max_length=255)
    schedule: Text = Field(default="", max_length=255)
    since: Moment | None = None
    until: Moment | None = None
    q: Text = Field(default="", max_length=255, description="A task id (or its start) or text.")


class BulkRetryIn(In):
    # The cap is TASKDECK_BULK_LIMIT, checked when the request runs (services.runs_retry_bulk,
    # a 400 naming `task_ids`), so it follows the setting; the document shows its value.
    task_ids: list[Text] | None = Field(
        default=None, json_schema_extra={"maxItems": settings.TASKDECK_BULK_LIMIT}
    )
    filter: RunFilterIn | None = Field(
        default=None, description="Retry every failed, cancelled or lost run matching it."
    )


class SkippedOut(Schema):
    task_id: str
    reason: str


class BulkRetryOut(Schema):
    retried: list[RunSummaryOut]
    skipped: list[SkippedOut]


# --- schedules -------------------------------------------------------------------------------


class TimingIn(In):
    kind: KindName
    cron: Text = Field(default="", max_length=120, description="For crontab: `30 2 * * 1-5`.")
    timezone: Text = Field(default="UTC", max_length=64)
    every: int = Field(default=0, description="For interval.")
    period: PeriodName = "minutes"
    run_at: Moment | None = Field(default=None, description="For one_off (with a time zone).")


MissedPolicyName = Literal["skip", "run_once", "run_all"]
POLICY_HELP = (
    "What beat does with fire times it missed (it was down, or the schedule was paused): "
    "`skip` them, `run_once` for all of them, or `run_all` (one run each, the latest "
    "`missed_cap` at most)."
)


class ScheduleIn(In):
    name: Text = Field(max_length=200)
    job: Text = Field(max_length=200)
    params: dict[str, Any] = Field(default_factory=dict)
    timing: TimingIn
    description: Text = Field(default="", max_length=2000)
    enabled: bool = True
    start_time: Moment | None = None
    expires: Moment | None = None
    one_off: bool = False
    queue: Text = Field(default="", max_length=64)
    missed_policy: MissedPolicyName = Field(default="run_once", description=POLICY_HELP)
    missed_cap: int = Field(default=DEFAULT.cap, ge=CAP_MIN, le=CAP_MAX)


class SchedulePatchIn(In):
    name: Text | None = Field(default=None, max_length=200)
    job: Text | None = Field(default=None, max_length=200)
    params: dict[str, Any] | None = None
    timing: TimingIn | None = None
    description: Text | None = Field(default=None, max_length=2000)
    enabled: bool | None = None
    start_time: Moment | None = None
    expires: Moment | None = None
    one_off: bool | None = None
    queue: Text | None = Field(default=None, max_length=64)
    missed_policy: MissedPolicyName | None = Field(default=None, description=POLICY_HELP)
    missed_cap: int | None = Field(default=None, ge=CAP_MIN, le=CAP_MAX)


class TimingOut(Schema):
    kind: Literal["crontab", "interval", "one_off", "other"]
    cron: str
    timezone: str
    every: int
    period: str
    run_at: datetime | None
    words: str


class LastRunOut(Schema):
    task_id: str
    state: StateName
    queued_at: datetime


class ScheduleOut(Schema):
    id: int
    name: str
    job: str
    params: dict[str, Any] = Field(
        description="Sensitive values masked; empty when `params_hidden`."
    )
    params_hidden: bool = Field(
        description="The job asks for a permission to read its runs, which the caller lacks."
    )
    timing: TimingOut
    description: str
    enabled: bool
    start_time: datetime | None
    expires: datetime | None
    one_off: bool
    queue: str
    declared: Literal["builtin", "code"] | None
    edited: bool
    missed_policy: MissedPolicyName = Field(description=POLICY_HELP)
    missed_cap: int
    next_fire_times: list[datetime]
    last_run: LastRunOut | None
    last_fired_at: datetime | None
    total_run_count: int


# --- stats -----------------------------------------------------------------------------------


class WorkerOut(Schema):
    name: str
    pool: str
    concurrency: int | None
    uptime_seconds: int | None
    processed: int
    queues: list[str]
    active: int


class QueueOut(Schema):
    name: str
    messages: int


class StatsOut(Schema):
    runs_last_24h: dict[str, int]
    runs_last_7d: dict[str, int]
    broker_up: bool
    broker_error: str
    workers: list[WorkerOut]
    queues: list[QueueOut]


def run_summary(run: Run) -> dict[str, Any]:
    return {
        "task_id": run.task_id,
        "job": run.job_name,
        "state": run.state,
        "source": run.source,
        "launched_by": run.actor_label,
        "schedule": run.schedule_name,
        "queue": run.queue,
        "queued_at": run.queued_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }
