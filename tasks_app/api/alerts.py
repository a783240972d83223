"""Alerting: rules and channels (list, create, read, change, delete; a channel's secret rotated,
a test message sent), what fires and what resolved lately, and the delivery log.

Reading needs a token; every change needs `tasks_app.manage_alerts` (403 without). A webhook
URL is answered as its scheme and host only, and a secret only by the call that set it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from .. import selectors, services
from ..models import AlertChannel, AlertDelivery, AlertRule
from ..selectors import AlertRow, ChannelRow, RuleRow
from ..selectors.alerts import DELIVERY_LIMIT, email_addresses, first_line
from .alert_schemas import (
    AlertsOut,
    ChannelIn,
    ChannelOut,
    ChannelPatchIn,
    ChannelSecretOut,
    DeliveryOut,
    RuleIn,
    RuleOut,
    RulePatchIn,
)
from .auth import actor
from .errors import ApiError, responses
from .schemas import NO_BODY, In

router = Router(tags=["alerts"])


# --- converters ---------------------------------------------------------------------------------


def rule_out(row: RuleRow) -> dict[str, Any]:
    rule = row.rule
    return {
        "id": rule.pk,
        "name": rule.name,
        "kind": rule.kind,
        "enabled": rule.enabled,
        "job_name": rule.job_name,
        "schedule_name": rule.schedule_name,
        "threshold_count": rule.threshold_count,
        "deadline_seconds": rule.threshold_seconds,
        "deadline": services.duration_text(rule.threshold_seconds) or None,
        "deadline_words": row.deadline,
        "scope": row.scope,
        "throttle_minutes": rule.throttle_minutes,
        "notify_resolved": rule.notify_resolved,
        "channels": [{"id": c.pk, "name": c.name} for c in rule.channels.all()],
        "firing": row.firing,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


def channel_out(row: ChannelRow, secret: str | None = None) -> dict[str, Any]:
    channel = row.channel
    out = {
        "id": channel.pk,
        "name": channel.name,
        "kind": channel.kind,
        "enabled": channel.enabled,
        "email_to": email_addresses(channel.email_to),
        "url": selectors.mask_url(channel.url),
        "has_secret": row.has_secret,
        "payload_format": channel.payload_format,
        "timeout_seconds": channel.timeout_seconds,
        "max_attempts": channel.max_attempts,
        "rules": row.rule_count,
        "created_at": channel.created_at,
        "updated_at": channel.updated_at,
    }
    if secret is not None:
        out["secret"] = secret or None
    return out


def alert_out(row: AlertRow) -> dict[str, Any]:
    alert = row.alert
    return {
        "id": alert.pk,
        "rule": {"id": alert.rule.pk, "name": alert.rule.name, "kind": alert.rule.kind},
        "summary": row.summary,
        "summary_hidden": row.hidden,
        "job": alert.job_name,
        "schedule": alert.schedule_name,
        "task_id": row.task_id or None,
        "fired_at": alert.fired_at,
        "resolved_at": alert.resolved_at,
    }


def delivery_out(delivery: AlertDelivery, event: str, subject: str) -> dict[str, Any]:
    pending = delivery.state == "pending"
    return {
        "id": delivery.pk,
        "channel_id": delivery.channel_id,
        "channel": delivery.channel_name,
        "event": event,
        "subject": subject,
        "state": delivery.state,
        "attempts": delivery.attempts,
        "response_status": delivery.response_status,
        "last_error": first_line(delivery.last_error),
        "next_attempt_at": delivery.next_attempt_at if pending else None,
        "sent_at": delivery.sent_at,
        "created_at": delivery.created_at,
    }


def _rule_row(pk: int) -> RuleRow:
    rows = selectors.rule_rows([pk])
    if not rows:
        raise ApiError(404, f"No alert rule {pk}.")
    return rows[0]


def _channel_row(pk: int, secret: str | None = None) -> dict[str, Any]:
    rows = selectors.channel_rows([pk])
    if not rows:
        raise ApiError(404, f"No channel {pk}.")
    return channel_out(rows[0], secret)


def _rule(pk: int) -> AlertRule:
    rule = AlertRule.objects.filter(pk=pk).first()
    if rule is None:
        raise ApiError(404, f"No alert rule {pk}.")
    return rule


def _channel(pk: int) -> AlertChannel:
    channel = AlertChannel.objects.filter(pk=pk).first()
    if channel is None:
        raise ApiError(404, f"No channel {pk}.")
    return channel


def _refused(error: services.FieldErrors, what: str) -> ApiError:
    return ApiError(400, f"Invalid {what}.", {k: [v] for k, v in error.errors.items()})


# --- alerts and deliveries ----------------------------------------------------------------------


@router.get("/alerts", response=responses({200: AlertsOut}), summary="Firing and resolved alerts")
def alerts(request: HttpRequest) -> dict[str, Any]:
    """Every alert firing now (newest first, at most 200) and the 20 resolved most recently.
    An alert about a job whose runs the caller may not read comes without its summary (it may
    quote the run's error): `summary_hidden` is true."""
    hidden = services.unreadable_jobs(actor(request))
    return {
        "firing": [alert_out(row) for row in selectors.firing_alerts(unreadable_jobs=hidden)],
        "resolved": [alert_out(row) for row in selectors.resolved_alerts(unreadable_jobs=hidden)],
    }


class DeliveryQuery(In):
    limit: int = DELIVERY_LIMIT


@router.get(
    "/alerts/deliveries", response=responses({200: list[DeliveryOut]}), summary="Delivery log"
)
def deliveries(request: HttpRequest, query: Query[DeliveryQuery]) -> list[dict[str, Any]]:
    """The latest deliveries of alert messages to channels, newest first (`limit`, 1 to 200).
    The subject of a message about a job whose runs the caller may not read is hidden."""
    if not 1 <= query.limit <= 200:
        raise ApiError(400, "Invalid limit.", {"limit": ["Between 1 and 200."]})
    hidden = services.unreadable_jobs(actor(request))
    return [
        delivery_out(row.delivery, row.event, row.subject)
        for row in selectors.recent_deliveries(query.limit, unreadable_jobs=hidden)
    ]


# --- rules ------------------------------------------------------------------------------------


@router.get("/alerts/rules", response=responses({200: list[RuleOut]}), summary="Alert rules")
def rules(request: HttpRequest) -> list[dict[str, Any]]:
    return [rule_out(row) for row in selectors.rule_rows()]


@router.post("/alerts/rules", response=responses({201: RuleOut}), summary="Create an alert rule")
def rule_create(request: HttpRequest, body: RuleIn) -> Status[dict[str, Any]]:
    definition = services.RuleDefinition(**body.model_dump())
    try:
        saved = services.alert_rule_save(definition, actor=actor(request))
    except services.FieldErrors as error:
        raise _refused(error, "alert rule") from None
    return Status(201, rule_out(_rule_row(saved.pk)))


@router.get("/alerts/rules/{pk}", response=responses({200: RuleOut}, 404), summary="One rule")
def rule(request: HttpRequest, pk: int) -> dict[str, Any]:
    return rule_out(_rule_row(pk))


@router.patch(
    "/alerts/rules/{pk}", response=responses({200: RuleOut}, 404), summary="Change an alert rule"
)
def rule_change(request: HttpRequest, pk: int, body: RulePatchIn) -> dict[str, Any]:
    """Only the fields given change; `deadline: null` clears the deadline."""
    stored = _rule(pk)
    given = body.model_dump(exclude_unset=True)
    changes = {k: v for k, v in given.items() if v is not None or k == "deadline"}
    definition = replace(services.rule_definition(stored), **changes)
    try:
        services.alert_rule_save(definition, actor=actor(request), rule=stored)
    except services.FieldErrors as error:
        raise _refused(error, "alert rule") from None
    return rule_out(_rule_row(pk))


@router.delete(
    "/alerts/rules/{pk}", response=responses({204: None}, 404), summary="Delete an alert rule"
)
def rule_delete(request: HttpRequest, pk: int) -> Status[None]:
    services.alert_rule_delete(_rule(pk), actor=actor(request))
    return Status(204, None)


# --- channels ---------------------------------------------------------------------------------


@router.get("/alerts/channels", response=responses({200: list[ChannelOut]}), summary="Channels")
def channels(request: HttpRequest) -> list[dict[str, Any]]:
    return [channel_out(row) for row in selectors.channel_rows()]


@router.post(
    "/alerts/channels", response=responses({201: ChannelSecretOut}), summary="Create a channel"
)
def channel_create(request: HttpRequest, body: ChannelIn) -> Status[dict[str, Any]]:
    """A webhook without a `secret` gets a generated one, answered here once."""
    definition = services.ChannelDefinition(**body.model_dump())
    try:
        saved, secret = services.alert_channel_save(definition, actor=actor(request))
    except services.FieldErrors as error:
        raise _refused(error, "channel") from None
    return Status(201, _channel_row(saved.pk, secret))


@router.get(
    "/alerts/channels/{pk}", response=responses({200: ChannelOut}, 404), summary="One channel"
)
def channel(request: HttpRequest, pk: int) -> dict[str, Any]:
    return _channel_row(pk)


@router.patch(
    "/alerts/channels/{pk}",
    response=responses({200: ChannelSecretOut}, 404),
    summary="Change a channel",
)
def channel_change(request: HttpRequest, pk: int, body: ChannelPatchIn) -> dict[str, Any]:
    """Only the fields given change; the URL and the secret are kept unless given. `secret`
    in the answer: the new one, when this call set one."""
    stored = _channel(pk)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    definition = replace(services.channel_definition(stored), **changes)
    try:
        _, secret = services.alert_channel_save(definition, actor=actor(request), channel=stored)
    except services.FieldErrors as error:
        raise _refused(error, "channel") from None
    return _channel_row(pk, secret)


@router.delete(
    "/alerts/channels/{pk}", response=responses({204: None}, 404), summary="Delete a channel"
)
def channel_delete(request: HttpRequest, pk: int) -> Status[None]:
    services.alert_channel_delete(_channel(pk), actor=actor(request))
    return Status(204, None)


@router.post(
    "/alerts/channels/{pk}/rotate-secret",
    response=responses({200: ChannelSecretOut}, 404, 409),
    summary="Give a webhook channel a new secret",
    openapi_extra=NO_BODY,
)
def channel_rotate_secret(request: HttpRequest, pk: int) -> dict[str, Any]:
    """Answers the new secret once; requests are signed with it from now on."""
    try:
        _, secret = services.alert_channel_rotate_secret(_channel(pk), actor=actor(request))
    except services.ServiceError as error:
        raise ApiError(409, str(error)) from None
    return _channel_row(pk, secret)


@router.post(
    "/alerts/channels/{pk}/test",
    response=responses({202: DeliveryOut}, 404),
    summary="Send a channel a test message",
    openapi_extra=NO_BODY,
)
def channel_test(request: HttpRequest, pk: int) -> Status[dict[str, Any]]:
    """Queues it (202): follow the delivery in `GET /alerts/deliveries`."""
    sent = services.alert_channel_test(_channel(pk), actor=actor(request))
    return Status(202, delivery_out(sent, sent.message.event, sent.message.subject))
