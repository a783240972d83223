"""Read queries for alerting: what fires now and what resolved lately, the rules and channels as
the Alerts page and the API show them, and the delivery log.

A webhook URL may itself be a credential (Slack's are), so nothing here hands out more of it
than `mask_url` does, and a channel's secret is never read out at all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from django.db.models import Count, Q

from ..models import (
    Alert,
    AlertChannel,
    AlertChannelKind,
    AlertDelivery,
    AlertRule,
    AlertRuleKind,
    DeliveryState,
)
from ..models.alerts import DEADLINE_KINDS, SCHEDULE_KINDS

FIRING_LIMIT = 200
RESOLVED_LIMIT = 20
DELIVERY_LIMIT = 50
ERROR_CHARS = 300


def mask_url(url: str) -> str:
    """ "https://hooks.slack.com/services/T0/B0/x" -> "https://hooks.slack.com/…": the scheme
    and host only (no user, password, path, query or fragment)."""
    if not url:
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "…"
    if not host:
        return "…"
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return f"{parts.scheme}://{netloc}/…"


def duration_words(seconds: int | None) -> str:
    """5400 -> "1 hour 30 minutes"; None -> ""."""
    if seconds is None:
        return ""
    words = []
    rest = int(seconds)
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        amount, rest = divmod(rest, size)
        if amount:
            words.append(f"{amount} {name}{'' if amount == 1 else 's'}")
    return " ".join(words) or "0 seconds"


def scope_words(rule: AlertRule) -> str:
    """What a rule watches: "job demo.flaky", "any job", "schedule nightly, 3 in a row"."""
    kind = AlertRuleKind(rule.kind)
    if kind in SCHEDULE_KINDS:
        text = f"schedule {rule.schedule_name}" if rule.schedule_name else "any schedule"
        if kind is AlertRuleKind.SCHEDULE_FAILING:
            text += f", {rule.threshold_count} failures in a row"
            if rule.job_name:
                text += f", job {rule.job_name}"
        return text
    return f"job {rule.job_name}" if rule.job_name else "any job"


def channel_target(channel: AlertChannel) -> str:
    """Where a channel sends, as shown: the addresses, or the webhook's masked URL."""
    if channel.kind == AlertChannelKind.EMAIL:
        return ", ".join(email_addresses(channel.email_to))
    return mask_url(channel.url)


def email_addresses(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass(frozen=True)
class AlertRow:
    alert: Alert
    rule_name: str
    task_id: str  # "" when the alert is not about one run

    @property
    def fired_at(self) -> datetime:
        return self.alert.fired_at


@dataclass(frozen=True)
class RuleRow:
    rule: AlertRule
    kind_label: str
    scope: str
    deadline: str  # in words; "" for kinds without one
    channel_names: list[str]
    firing: int


@dataclass(frozen=True)
class ChannelRow:
    channel: AlertChannel
    kind_label: str
    target: str  # masked
    has_secret: bool
    rule_count: int


@dataclass(frozen=True)
class DeliveryRow:
    delivery: AlertDelivery
    event: str
    subject: str
    error: str  # the last error's first line, cut to ERROR_CHARS

    @property
    def is_pending(self) -> bool:
        return self.delivery.state == DeliveryState.PENDING


@dataclass(frozen=True)
class AlertsPage:
    firing: list[AlertRow]
    resolved: list[AlertRow]
    rules: list[RuleRow]
    channels: list[ChannelRow]
    deliveries: list[DeliveryRow]

    @property
    def deliveries_pending(self) -> bool:
        return any(row.is_pending for row in self.deliveries)


def _alert_rows(alerts: list[Alert]) -> list[AlertRow]:
    return [
        AlertRow(alert, alert.rule.name, alert.run.task_id if alert.run is not None else "")
        for alert in alerts
    ]


def firing_alerts(limit: int = FIRING_LIMIT) -> list[AlertRow]:
    """Alerts still firing, newest first. Those of a disabled rule are left out: it is no
    longer evaluated, so they would never resolve."""
    rows = Alert.objects.select_related("rule", "run").filter(
        resolved_at__isnull=True, rule__enabled=True
    )
    return _alert_rows(list(rows.order_by("-fired_at", "-id")[:limit]))


def resolved_alerts(limit: int = RESOLVED_LIMIT) -> list[AlertRow]:
    """The alerts resolved most recently."""
    rows = Alert.objects.select_related("rule", "run").filter(resolved_at__isnull=False)
    return _alert_rows(list(rows.order_by("-resolved_at", "-id")[:limit]))


def rule_row(rule: AlertRule, firing: int) -> RuleRow:
    kind = AlertRuleKind(rule.kind)
    deadline = duration_words(rule.threshold_seconds) if kind in DEADLINE_KINDS else ""
    return RuleRow(
        rule=rule,
        kind_label=str(kind.label),
        scope=scope_words(rule),
        deadline=deadline,
        channel_names=[channel.name for channel in rule.channels.all()],
        firing=firing,
    )


def rule_rows(pks: list[int] | None = None) -> list[RuleRow]:
    """Every rule by name (or those of `pks`), with its channels and how many of its alerts
    fire now."""
    rules = AlertRule.objects.prefetch_related("channels").annotate(
        firing=Count("alerts", filter=Q(alerts__resolved_at__isnull=True))
    )
    if pks is not None:
        rules = rules.filter(pk__in=pks)
    return [rule_row(rule, rule.firing) for rule in rules.order_by("name")]


def channel_rows(pks: list[int] | None = None) -> list[ChannelRow]:
    """Every channel by name (or those of `pks`), its target masked."""
    channels = AlertChannel.objects.annotate(rule_count=Count("rules"))
    if pks is not None:
        channels = channels.filter(pk__in=pks)
    return [
        ChannelRow(
            channel=channel,
            kind_label=str(AlertChannelKind(channel.kind).label),
            target=channel_target(channel),
            has_secret=bool(channel.secret),
            rule_count=channel.rule_count,
        )
        for channel in channels.order_by("name")
    ]


def first_line(text: str, limit: int = ERROR_CHARS) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def recent_deliveries(limit: int = DELIVERY_LIMIT) -> list[DeliveryRow]:
    """The delivery log: the latest `limit` deliveries, newest first."""
    rows = AlertDelivery.objects.select_related("message").order_by("-created_at", "-id")
    return [
        DeliveryRow(
            delivery=delivery,
            event=delivery.message.event,
            subject=delivery.message.subject,
            error=first_line(delivery.last_error),
        )
        for delivery in rows[:limit]
    ]


def alerts_page() -> AlertsPage:
    return AlertsPage(
        firing=firing_alerts(),
        resolved=resolved_alerts(),
        rules=rule_rows(),
        channels=channel_rows(),
        deliveries=recent_deliveries(),
    )


__all__ = [
    "DELIVERY_LIMIT",
    "AlertRow",
    "AlertsPage",
    "ChannelRow",
    "DeliveryRow",
    "RuleRow",
    "alerts_page",
    "channel_rows",
    "channel_target",
    "duration_words",
    "email_addresses",
    "firing_alerts",
    "first_line",
    "mask_url",
    "recent_deliveries",
    "resolved_alerts",
    "rule_rows",
    "scope_words",
]
