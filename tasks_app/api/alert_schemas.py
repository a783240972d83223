"""The alerting API's bodies: rules, channels, alerts and deliveries. The bounds documented here
are the services' own (`tasks_app.services.alerts`), so a request the document allows is
refused only by rules a schema cannot say (a name taken, an unknown job, a bad address)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.conf import settings
from ninja import Schema
from pydantic import BeforeValidator, Field, WithJsonSchema

from ..models import AlertChannelKind, AlertRuleKind, WebhookFormat
from ..services.alerts import (
    ATTEMPTS_RANGE,
    COUNT_RANGE,
    EMAIL_MAX,
    NAME_MAX,
    SECRET_MAX,
    SECRET_MIN,
    THROTTLE_RANGE,
    TIMEOUT_RANGE,
    URL_MAX,
)
from ..services.durations import (
    EXAMPLES,
    MAX_SECONDS,
    MIN_SECONDS,
    InvalidDuration,
    parse_duration,
)
from .schemas import In, Text

RuleKindName = Literal[
    "run_failed", "schedule_failing", "queued_too_long", "running_too_long", "schedule_missed"
]
ChannelKindName = Literal["email", "webhook"]
FormatName = Literal["taskdeck", "slack"]
EventName = Literal["fired", "resolved", "test"]
DeliveryStateName = Literal["pending", "sent", "failed"]

assert set(RuleKindName.__args__) == set(AlertRuleKind.values)  # type: ignore[attr-defined]
assert set(ChannelKindName.__args__) == set(AlertChannelKind.values)  # type: ignore[attr-defined]
assert set(FormatName.__args__) == set(WebhookFormat.values)  # type: ignore[attr-defined]

Count = Annotated[int, Field(ge=COUNT_RANGE[0], le=COUNT_RANGE[1])]
Throttle = Annotated[int, Field(ge=THROTTLE_RANGE[0], le=THROTTLE_RANGE[1])]
Timeout = Annotated[int, Field(ge=TIMEOUT_RANGE[0], le=TIMEOUT_RANGE[1])]
Attempts = Annotated[int, Field(ge=ATTEMPTS_RANGE[0], le=ATTEMPTS_RANGE[1])]


def _deadline(value: Any) -> Any:
    """Checked by the services' own parser, so the error is the page's and names the field
    (`deadline`), whichever form of duration was sent."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"Give a duration such as {EXAMPLES}.")
    try:
        parse_duration(value)
    except InvalidDuration as error:
        raise ValueError(str(error)) from None
    return value


# A deadline: a duration ("15m", "1h30m") or a number of seconds, from 1 second to 30 days.
Deadline = Annotated[
    int | str,
    BeforeValidator(_deadline),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": MIN_SECONDS, "maximum": MAX_SECONDS},
                {"type": "string", "minLength": 1, "maxLength": 40},
            ]
        }
    ),
]
DEADLINE_HELP = (
    f"For queued_too_long, running_too_long and schedule_missed (required there): {EXAMPLES}; "
    "from 1 second to 30 days."
)
Email = Annotated[Text, Field(max_length=EMAIL_MAX)]
Emails = Annotated[list[Email], Field(max_length=settings.TASKDECK_EMAIL_MAX_RECIPIENTS)]
Name = Annotated[Text, Field(min_length=1, max_length=NAME_MAX)]
Url = Annotated[
    Text,
    Field(
        max_length=URL_MAX,
        description="http:// or https:// only, to a public host: not localhost nor a loopback, "
        "private or link-local address (unless the server allows private targets).",
    ),
]
Secret = Annotated[Text, Field(min_length=SECRET_MIN, max_length=SECRET_MAX)]
ChannelIds = Annotated[list[Annotated[int, Field(ge=1, le=2**63 - 1)]], Field(max_length=100)]


# --- rules -------------------------------------------------------------------------------------


class RuleIn(In):
    name: Name
    kind: RuleKindName
    enabled: bool = True
    job_name: Text = Field(
        default="", max_length=255, description="A registered job; empty: any job."
    )
    schedule_name: Text = Field(
        default="",
        max_length=200,
        description="For the schedule kinds: a schedule's name; empty: any schedule.",
    )
    threshold_count: Count = Field(default=3, description="schedule_failing: failures in a row.")
    deadline: Deadline | None = Field(default=None, description=DEADLINE_HELP)
    throttle_minutes: Throttle = Field(
        default=10, description="At most one message per this many minutes; 0: no throttle."
    )
    notify_resolved: bool = True
    channels: ChannelIds = Field(default_factory=list, description="Channel ids.")


class RulePatchIn(In):
    name: Name | None = None
    kind: RuleKindName | None = None
    enabled: bool | None = None
    job_name: Text | None = Field(default=None, max_length=255)
    schedule_name: Text | None = Field(default=None, max_length=200)
    threshold_count: Count | None = None
    deadline: Deadline | None = Field(default=None, description=DEADLINE_HELP)
    throttle_minutes: Throttle | None = None
    notify_resolved: bool | None = None
    channels: ChannelIds | None = None


class ChannelRefOut(Schema):
    id: int
    name: str


class RuleOut(Schema):
    id: int
    name: str
    kind: RuleKindName
    enabled: bool
    job_name: str
    schedule_name: str
    threshold_count: int
    deadline_seconds: int | None
    deadline: str | None = Field(description="The deadline as typed, e.g. `1h30m`.")
    deadline_words: str
    scope: str
    throttle_minutes: int
    notify_resolved: bool
    channels: list[ChannelRefOut]
    firing: int = Field(description="Alerts of this rule firing now.")
    created_at: datetime
    updated_at: datetime


# --- channels ----------------------------------------------------------------------------------


class ChannelIn(In):
    name: Name
    kind: ChannelKindName
    enabled: bool = True
    email_to: Emails = Field(default_factory=list, description="email: the addresses.")
    url: Url | None = Field(
        default=None, description="webhook: http:// or https:// only, to a public host."
    )
    secret: Secret | None = Field(
        default=None, description="webhook: the signing secret; omitted: one is generated."
    )
    payload_format: FormatName = "taskdeck"
    timeout_seconds: Timeout = 5
    max_attempts: Attempts = 5


class ChannelPatchIn(In):
    name: Name | None = None
    kind: ChannelKindName | None = None
    enabled: bool | None = None
    email_to: Emails | None = None
    url: Url | None = Field(default=None, description="Omitted or null: keep the stored URL.")
    secret: Secret | None = Field(default=None, description="Omitted or null: keep the secret.")
    payload_format: FormatName | None = None
    timeout_seconds: Timeout | None = None
    max_attempts: Attempts | None = None


class ChannelOut(Schema):
    id: int
    name: str
    kind: ChannelKindName
    enabled: bool
    email_to: list[str]
    url: str = Field(description="Only the scheme and host: the rest may be a credential.")
    has_secret: bool
    payload_format: FormatName
    timeout_seconds: int
    max_attempts: int
    rules: int = Field(description="How many rules send to it.")
    created_at: datetime
    updated_at: datetime


class ChannelSecretOut(ChannelOut):
    secret: str | None = Field(
        description="The signing secret, when this call set one: shown once, never again."
    )


# --- alerts and deliveries ---------------------------------------------------------------------


class RuleRefOut(Schema):
    id: int
    name: str
    kind: RuleKindName


class AlertOut(Schema):
    id: int
    rule: RuleRefOut
    summary: str = Field(description="What fired; hidden when `summary_hidden`.")
    summary_hidden: bool = Field(
        description="The job asks for a permission the caller lacks: its runs' errors (which "
        "a summary may quote) are not shown."
    )
    job: str
    schedule: str
    task_id: str | None
    fired_at: datetime
    resolved_at: datetime | None


class AlertsOut(Schema):
    firing: list[AlertOut]
    resolved: list[AlertOut] = Field(description="The most recently resolved.")


class DeliveryOut(Schema):
    id: int
    channel_id: int | None
    channel: str
    event: EventName
    subject: str = Field(
        description="The message's subject; hidden when it may quote an error of a job whose "
        "runs the caller may not read."
    )
    state: DeliveryStateName
    attempts: int
    response_status: int | None
    last_error: str = Field(description="The last error's first line.")
    next_attempt_at: datetime | None = Field(description="While pending.")
    sent_at: datetime | None
    created_at: datetime


__all__ = [
    "AlertOut",
    "AlertsOut",
    "ChannelIn",
    "ChannelOut",
    "ChannelPatchIn",
    "ChannelSecretOut",
    "DeliveryOut",
    "RuleIn",
    "RuleOut",
    "RulePatchIn",
]
