"""Actions on alert rules and channels: save (create or edit), delete, rotate a channel's secret
and send a channel a test message. The pages, the admin and the API all save through here, so
one set of rules decides what may be stored (`alert_rule_check`, `alert_channel_check`), the
permission `tasks_app.manage_alerts` is checked once, and every change is audited with the
values before and after.

A webhook URL may be a credential (Slack's are) and the secret signs every request, so audit
entries hold only the URL's scheme and host and whether a secret is set. A secret is answered
once, by the action that set it (create, or rotate), and never read out again. A webhook goes
to public addresses only (unless settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE): "localhost" or
a literal private address is refused on save; what a host name resolves to is checked at send.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, transaction
from django_celery_beat.models import PeriodicTask

from ..alerts import delivery, targets
from ..jobs.registry import find_job
from ..models import (
    AlertChannel,
    AlertChannelKind,
    AlertDelivery,
    AlertRule,
    AlertRuleKind,
    WebhookFormat,
)
from ..models.alerts import DEADLINE_KINDS, SCHEDULE_KINDS
from ..selectors.alerts import email_addresses, mask_url
from .common import Actor, audit
from .durations import InvalidDuration, parse_duration
from .errors import FieldErrors, ServiceError
from .policy import has_job_permission

MANAGE = "tasks_app.manage_alerts"
NAME_MAX = 100
COUNT_RANGE = (1, 100)  # threshold_count: failures in a row
THROTTLE_RANGE = (0, 1440)  # minutes: up to a day
TIMEOUT_RANGE = (1, 30)  # seconds per attempt
ATTEMPTS_RANGE = (1, 10)
URL_MAX = 2000
SECRET_MIN, SECRET_MAX = 16, 200
EMAIL_MAX = 254


class InvalidAlertRule(FieldErrors):
    """A rule that cannot be stored, keyed by field."""


class InvalidAlertChannel(FieldErrors):
    """A channel that cannot be stored, keyed by field."""


@dataclass(frozen=True)
class RuleDefinition:
    """A rule as typed. `deadline`: a duration ("15m", or seconds), for the DEADLINE_KINDS."""

    name: str
    kind: str
    enabled: bool = True
    job_name: str = ""
    schedule_name: str = ""
    threshold_count: int = 3
    deadline: str | int | None = None
    throttle_minutes: int = 10
    notify_resolved: bool = True
    channels: Sequence[int] = ()


@dataclass(frozen=True)
class ChannelDefinition:
    """A channel as typed. `email_to`: addresses, one per line (or a list). `url` and
    `secret`: None (or "") keeps the stored value; a new webhook gets a generated secret."""

    name: str
    kind: str
    enabled: bool = True
    email_to: str | Sequence[str] = ""
    url: str | None = None
    secret: str | None = None
    payload_format: str = WebhookFormat.TASKDECK
    timeout_seconds: int = 5
    max_attempts: int = 5


@dataclass
class _Checked:
    """Values that passed the rules, ready to be set on the model."""

    values: dict[str, Any]
    channel_ids: list[int] = field(default_factory=list)  # a rule's
    secret: str = ""  # a channel's, if one was given


def rule_definition(rule: AlertRule) -> RuleDefinition:
    """A stored rule as a definition, to change a few fields of (`dataclasses.replace`)."""
    return RuleDefinition(
        name=rule.name,
        kind=rule.kind,
        enabled=rule.enabled,
        job_name=rule.job_name,
        schedule_name=rule.schedule_name,
        threshold_count=rule.threshold_count,
        deadline=rule.threshold_seconds,
        throttle_minutes=rule.throttle_minutes,
        notify_resolved=rule.notify_resolved,
        channels=sorted(rule.channels.values_list("pk", flat=True)),
    )


def channel_definition(channel: AlertChannel) -> ChannelDefinition:
    """A stored channel as a definition; its URL and secret as None (kept unless given)."""
    return ChannelDefinition(
        name=channel.name,
        kind=channel.kind,
        enabled=channel.enabled,
        email_to=channel.email_to,
        payload_format=channel.payload_format,
        timeout_seconds=channel.timeout_seconds,
        max_attempts=channel.max_attempts,
    )


# --- rules -------------------------------------------------------------------------------------


def alert_rule_check(
    definition: RuleDefinition, *, actor: Actor, rule: AlertRule | None = None
) -> dict[str, Any]:
    """The rules of `alert_rule_save`, without saving: the values to store. Raises
    PermissionDenied or InvalidAlertRule naming every field at fault."""
    actor.require(MANAGE)
    return _checked_rule(definition, actor, rule).values


def alert_rule_save(
    definition: RuleDefinition, *, actor: Actor, rule: AlertRule | None = None
) -> AlertRule:
    """Create a rule, or change `rule` to `definition`. Raises PermissionDenied or
    InvalidAlertRule; nothing is stored then."""
    actor.require(MANAGE)
    checked = _checked_rule(definition, actor, rule)
    try:
        with transaction.atomic():
            before = None
            if rule is not None:
                rule = AlertRule.objects.select_for_update().get(pk=rule.pk)
                before = _rule_snapshot(rule)
            saved = rule or AlertRule(created_by_id=actor.user_id)
            for name, value in checked.values.items():
                setattr(saved, name, value)
            saved.save()
            saved.channels.set(checked.channel_ids)
            after = _rule_snapshot(saved)
            action = "alert_rule.create" if before is None else "alert_rule.edit"
            details = {"job": saved.job_name, **_changes(before, after)}
            audit(actor, action, None, details, target=_rule_target(saved))
    except IntegrityError:  # the same name, saved meanwhile
        raise InvalidAlertRule({"name": _NAME_TAKEN.format(kind="rule")}) from None
    return saved


def alert_rule_delete(rule: AlertRule, *, actor: Actor) -> None:
    """Delete `rule` with its alerts and messages (deliveries go with their messages)."""
    actor.require(MANAGE)
    with transaction.atomic():
        before = _rule_snapshot(rule)
        target = _rule_target(rule)
        rule.delete()
        details = {"job": before["job_name"], **_changes(before, None)}
        audit(actor, "alert_rule.delete", None, details, target=target)


def _checked_rule(definition: RuleDefinition, actor: Actor, rule: AlertRule | None) -> _Checked:
    errors: dict[str, str] = {}
    name = _clean_name(definition.name, errors)
    same_name = AlertRule.objects.filter(name=name)
    if rule is not None:
        same_name = same_name.exclude(pk=rule.pk)
    if name and same_name.exists():
        errors["name"] = _NAME_TAKEN.format(kind="rule")
    try:
        kind: AlertRuleKind | None = AlertRuleKind(definition.kind)
    except ValueError:
        kind = None
        errors["kind"] = f"Choose one of: {', '.join(AlertRuleKind.values)}."
    job_name = str(definition.job_name or "").strip()
    schedule_name = str(definition.schedule_name or "").strip()
    if kind is AlertRuleKind.SCHEDULE_MISSED:
        job_name = ""  # a missed fire time belongs to no run, so to no job
    if kind is not None and kind not in SCHEDULE_KINDS:
        schedule_name = ""  # only schedule rules are about one schedule
    if job_name:
        spec = find_job(job_name)
        if spec is None:
            errors["job_name"] = f"No job named “{job_name}” is registered."
        elif not spec.ledger:
            errors["job_name"] = f"{job_name} keeps no runs in the history, so nothing could fire."
        elif not has_job_permission(actor, spec):
            errors["job_name"] = f"Watching {job_name} needs the permission {spec.permission}."
    if schedule_name and not PeriodicTask.objects.filter(name=schedule_name).exists():
        errors["schedule_name"] = f"No schedule named “{schedule_name}”."
    count = _in_range(definition.threshold_count, COUNT_RANGE, "threshold_count", errors)
    throttle = _in_range(definition.throttle_minutes, THROTTLE_RANGE, "throttle_minutes", errors)
    threshold_seconds = None
    if kind is not None and kind in DEADLINE_KINDS:
        if definition.deadline is None or definition.deadline == "":
            errors["deadline"] = "Give the deadline, e.g. 15m, 2h or 1h30m."
        else:
            try:
                threshold_seconds = parse_duration(definition.deadline)
            except InvalidDuration as error:
                errors["deadline"] = str(error)
    channel_ids = _channel_ids(definition.channels, errors)
    if errors:
        raise InvalidAlertRule(errors)
    values = {
        "name": name,
        "kind": str(kind),
        "enabled": bool(definition.enabled),
        "job_name": job_name,
        "schedule_name": schedule_name,
        "threshold_count": count,
        "threshold_seconds": threshold_seconds,
        "throttle_minutes": throttle,
        "notify_resolved": bool(definition.notify_resolved),
    }
    return _Checked(values, channel_ids)


def _channel_ids(given: Sequence[int], errors: dict[str, str]) -> list[int]:
    try:
        wanted = sorted({int(pk) for pk in given})
    except (TypeError, ValueError):
        errors["channels"] = "Give channel ids (numbers)."
        return []
    # Bounded before the query: an id beyond any database's integer is simply not there.
    found = set(
        AlertChannel.objects.filter(pk__in=[pk for pk in wanted if 0 < pk < 2**63]).values_list(
            "pk", flat=True
        )
    )
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        errors["channels"] = f"No channel with id {', '.join(map(str, missing[:10]))}."
    return wanted


def _rule_snapshot(rule: AlertRule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "kind": rule.kind,
        "enabled": rule.enabled,
        "job_name": rule.job_name,
        "schedule_name": rule.schedule_name,
        "threshold_count": rule.threshold_count,
        "threshold_seconds": rule.threshold_seconds,
        "throttle_minutes": rule.throttle_minutes,
        "notify_resolved": rule.notify_resolved,
        "channels": sorted(rule.channels.values_list("name", flat=True)),
    }


def _rule_target(rule: AlertRule) -> tuple[str, str]:
    return ("alert_rule", str(rule.pk))


# --- channels ----------------------------------------------------------------------------------


def alert_channel_check(
    definition: ChannelDefinition, *, actor: Actor, channel: AlertChannel | None = None
) -> dict[str, Any]:
    """The rules of `alert_channel_save`, without saving: the values to store (a secret to be
    generated shows as ""). Raises PermissionDenied or InvalidAlertChannel."""
    actor.require(MANAGE)
    return _checked_channel(definition, channel).values


def alert_channel_save(
    definition: ChannelDefinition, *, actor: Actor, channel: AlertChannel | None = None
) -> tuple[AlertChannel, str]:
    """Create a channel, or change `channel` to `definition`. Answers the channel and its new
    secret when this save set one (a new webhook, a given secret, or a channel that became a
    webhook without one): show it once, it is never answered again; else "". Raises
    PermissionDenied or InvalidAlertChannel; nothing is stored then."""
    actor.require(MANAGE)
    try:
        with transaction.atomic():
            before = None
            if channel is not None:
                channel = AlertChannel.objects.select_for_update().get(pk=channel.pk)
                before = _channel_snapshot(channel)
            checked = _checked_channel(definition, channel)
            saved = channel or AlertChannel()
            for name, value in checked.values.items():
                setattr(saved, name, value)
            new_secret = ""
            if saved.kind == AlertChannelKind.WEBHOOK:
                new_secret = checked.secret or ("" if saved.secret else secrets.token_urlsafe(32))
                if new_secret:
                    saved.secret = new_secret
            else:
                saved.secret = ""  # only webhooks sign
            saved.save()
            after = _channel_snapshot(saved)
            action = "alert_channel.create" if before is None else "alert_channel.edit"
            details = _changes(before, after)
            if new_secret and before is not None:
                details["secret_changed"] = True
            audit(actor, action, None, details, target=_channel_target(saved))
    except IntegrityError:  # the same name, saved meanwhile
        raise InvalidAlertChannel({"name": _NAME_TAKEN.format(kind="channel")}) from None
    return saved, new_secret


def alert_channel_delete(channel: AlertChannel, *, actor: Actor) -> None:
    """Delete `channel`: rules stop sending to it; its deliveries stay in the log by name."""
    actor.require(MANAGE)
    with transaction.atomic():
        before = _channel_snapshot(channel)
        target = _channel_target(channel)
        channel.delete()
        audit(actor, "alert_channel.delete", None, _changes(before, None), target=target)


def alert_channel_rotate_secret(channel: AlertChannel, *, actor: Actor) -> tuple[AlertChannel, str]:
    """Give a webhook channel a new generated secret; answers it (show it once). Receivers
    must be given the new one: requests are signed with it from now on."""
    actor.require(MANAGE)
    if channel.kind != AlertChannelKind.WEBHOOK:
        raise ServiceError(f"{channel.name} sends email: only webhooks sign with a secret.")
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        AlertChannel.objects.filter(pk=channel.pk).update(secret=secret)
        channel.refresh_from_db()
        audit(
            actor,
            "alert_channel.rotate_secret",
            None,
            {"name": channel.name},
            target=_channel_target(channel),
        )
    return channel, secret


def alert_channel_test(channel: AlertChannel, *, actor: Actor) -> AlertDelivery:
    """Queue a test message to `channel` (sent by the worker, as every delivery is: the
    request never waits on the receiver). Answers the delivery, to follow in the log."""
    actor.require(MANAGE)
    with transaction.atomic():
        sent = delivery.send_test(channel)
        details = {"name": channel.name, "delivery": sent.pk}
        audit(actor, "alert_channel.test", None, details, target=_channel_target(channel))
    return sent


def _checked_channel(definition: ChannelDefinition, channel: AlertChannel | None) -> _Checked:
    errors: dict[str, str] = {}
    name = _clean_name(definition.name, errors)
    same_name = AlertChannel.objects.filter(name=name)
    if channel is not None:
        same_name = same_name.exclude(pk=channel.pk)
    if name and same_name.exists():
        errors["name"] = _NAME_TAKEN.format(kind="channel")
    try:
        kind: AlertChannelKind | None = AlertChannelKind(definition.kind)
    except ValueError:
        kind = None
        errors["kind"] = f"Choose one of: {', '.join(AlertChannelKind.values)}."
    try:
        payload_format = WebhookFormat(definition.payload_format or WebhookFormat.TASKDECK)
    except ValueError:
        payload_format = WebhookFormat.TASKDECK
        errors["payload_format"] = f"Choose one of: {', '.join(WebhookFormat.values)}."
    timeout = _in_range(definition.timeout_seconds, TIMEOUT_RANGE, "timeout_seconds", errors)
    attempts = _in_range(definition.max_attempts, ATTEMPTS_RANGE, "max_attempts", errors)
    email_to = ""
    url = ""
    secret = ""
    if kind is AlertChannelKind.EMAIL:
        email_to = _clean_emails(definition.email_to, errors)
    elif kind is AlertChannelKind.WEBHOOK:
        url = _clean_url(definition.url, channel, errors)
        secret = _clean_secret(definition.secret, errors)
    if errors:
        raise InvalidAlertChannel(errors)
    values: dict[str, Any] = {
        "name": name,
        "kind": str(kind),
        "enabled": bool(definition.enabled),
        "email_to": email_to,
        "url": url,
        "payload_format": str(payload_format),
        "timeout_seconds": timeout,
        "max_attempts": attempts,
    }
    return _Checked(values, secret=secret)


def _clean_emails(given: str | Sequence[str], errors: dict[str, str]) -> str:
    lines = email_addresses(given) if isinstance(given, str) else [str(x).strip() for x in given]
    lines = [line for line in lines if line]
    if not lines:
        errors["email_to"] = "Give at least one address, one per line."
        return ""
    limit = settings.TASKDECK_EMAIL_MAX_RECIPIENTS
    if len(lines) > limit:
        errors["email_to"] = f"Give at most {limit} addresses."
        return ""
    problems = []
    for number, address in enumerate(lines, start=1):
        try:
            if len(address) > EMAIL_MAX or "\n" in address or "," in address:
                raise ValidationError("too long")
            validate_email(address)
        except ValidationError:
            shown = address if len(address) <= 80 else address[:79] + "…"
            problems.append(f"line {number}: “{shown}”")
    if problems:
        errors["email_to"] = "Not an email address: " + "; ".join(problems[:5]) + "."
        return ""
    unique = list(dict.fromkeys(lines))  # the same address twice gets one message
    return "\n".join(unique)


def _clean_url(given: str | None, channel: AlertChannel | None, errors: dict[str, str]) -> str:
    url = (given or "").strip()
    if not url:
        stored = channel.url if channel is not None else ""
        if not stored:
            errors["url"] = "Give the webhook's URL (http:// or https://)."
        return stored
    if len(url) > URL_MAX:
        errors["url"] = f"Keep the URL to {URL_MAX} characters."
        return ""
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError:
        errors["url"] = "Give an http:// or https:// URL, e.g. https://hooks.example.com/taskdeck."
        return ""
    # "localhost" or a literal address that is not public (unless the setting allows private
    # ones): refused now, clearly; a host name is checked at every attempt (`targets.resolve`).
    problem = targets.target_problem(url)
    if problem is not None:
        errors["url"] = problem
        return ""
    return url


def _clean_secret(given: str | None, errors: dict[str, str]) -> str:
    secret = (given or "").strip()
    if secret and not SECRET_MIN <= len(secret) <= SECRET_MAX:
        errors["secret"] = (
            f"Give a secret of {SECRET_MIN} to {SECRET_MAX} characters, or none to have one made."
        )
        return ""
    if any(ch.isspace() or ord(ch) < 32 for ch in secret):
        errors["secret"] = "A secret has no spaces or control characters."  # noqa: S105
        return ""
    return secret


def _channel_snapshot(channel: AlertChannel) -> dict[str, Any]:
    # The URL's host only, and whether a secret is set: never the secret or the URL's path.
    return {
        "name": channel.name,
        "kind": channel.kind,
        "enabled": channel.enabled,
        "email_to": email_addresses(channel.email_to),
        "url": mask_url(channel.url),
        "secret_set": bool(channel.secret),
        "payload_format": channel.payload_format,
        "timeout_seconds": channel.timeout_seconds,
        "max_attempts": channel.max_attempts,
    }


def _channel_target(channel: AlertChannel) -> tuple[str, str]:
    return ("alert_channel", str(channel.pk))


# --- shared ------------------------------------------------------------------------------------

_NAME_TAKEN = "Another {kind} already has this name."


def _clean_name(given: str, errors: dict[str, str]) -> str:
    name = " ".join(str(given or "").split())
    if not name:
        errors["name"] = "Give it a name."
    elif len(name) > NAME_MAX:
        errors["name"] = f"Keep the name to {NAME_MAX} characters."
    elif "\x00" in name:
        errors["name"] = "Null characters are not allowed."
    return name


def _in_range(value: Any, bounds: tuple[int, int], name: str, errors: dict[str, str]) -> int:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            value = int(str(value).strip()) if len(str(value)) <= 20 else None
        except ValueError:
            value = None
    if value is None or not low <= value <= high:
        errors[name] = f"Give a whole number from {low} to {high}."
        return low
    return int(value)


def _changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """The audit details: every value on create and delete, the changed ones on edit."""
    if before is None or after is None:
        name = (after or before or {}).get("name", "")
        return {"name": name, "before": before, "after": after}
    keys = [key for key in after if before.get(key) != after[key]]
    return {
        "name": after["name"],
        "before": {key: before.get(key) for key in keys},
        "after": {key: after[key] for key in keys},
    }


__all__ = [
    "MANAGE",
    "ChannelDefinition",
    "InvalidAlertChannel",
    "InvalidAlertRule",
    "RuleDefinition",
    "alert_channel_check",
    "alert_channel_delete",
    "alert_channel_rotate_secret",
    "alert_channel_save",
    "alert_channel_test",
    "alert_rule_check",
    "alert_rule_delete",
    "alert_rule_save",
    "channel_definition",
    "rule_definition",
]
