"""Read queries for alerting: what fires now and what resolved lately, the rules and channels as
the Alerts page and the API show them, the delivery log, and whether alerts are evaluated at all.

A webhook URL may itself be a credential (Slack's are), so nothing here hands out more of it
than `mask_url` does, and a channel's secret is never read out at all. An alert's summary may
hold a run's error, so of a job the viewer may not read (`unreadable_jobs`, from
services.unreadable_jobs) the alert is listed, as the history lists its runs, but its summary
(and the subject of a message about it) is not."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from redis.exceptions import RedisError

from ..models import (
    Alert,
    AlertChannel,
    AlertChannelKind,
    AlertDelivery,
    AlertRule,
    AlertRuleKind,
    DeliveryState,
    RollupMark,
)
from ..models.alerts import DEADLINE_KINDS, SCHEDULE_KINDS
from ..schedules.beat import DEFAULT_LOCK_KEY
from ..worker import presence

logger = logging.getLogger(__name__)

FIRING_LIMIT = 200
RESOLVED_LIMIT = 20
DELIVERY_LIMIT = 50
ERROR_CHARS = 300
HIDDEN_SUMMARY = "Hidden: needs this job's permission"
# Written by alerts.evaluate.evaluate_all at the end of every pass (every 15 s, from beat).
EVALUATED_MARK = "alerts_evaluated"
EVALUATION_STALE = timedelta(minutes=1)
# The delivery log refreshes itself while a delivery is due this soon (not during long backoffs).
POLL_AHEAD = timedelta(minutes=1)
# The columns an alert row shows: never a run's log, parameters or result.
_ROW_COLUMNS = (
    "id", "rule__id", "rule__name", "rule__kind", "run__id", "run__task_id", "job_name",
    "schedule_name", "summary", "fired_at", "resolved_at",
)  # fmt: skip


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
    summary: str  # HIDDEN_SUMMARY when the viewer may not read the job's runs
    hidden: bool = False

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
    subject: str  # HIDDEN_SUMMARY when it may name an error of a job the viewer may not read
    error: str  # the last error's first line, cut to ERROR_CHARS

    @property
    def is_pending(self) -> bool:
        return self.delivery.state == DeliveryState.PENDING


@dataclass(frozen=True)
class Evaluation:
    """Whether alerts are being evaluated: `last` (None: never) is the end of the latest
    evaluate_all pass; `beat` whether a beat holds the leader lock (None: Redis did not say)."""

    last: datetime | None
    stale: bool
    beat: bool | None


@dataclass(frozen=True)
class AlertsPage:
    firing: list[AlertRow]
    resolved: list[AlertRow]
    rules: list[RuleRow]
    channels: list[ChannelRow]
    deliveries: list[DeliveryRow]
    evaluation: Evaluation

    @property
    def deliveries_pending(self) -> bool:
        return any(row.is_pending for row in self.deliveries)


def _alert_rows(alerts: Iterable[Alert], unreadable_jobs: Collection[str]) -> list[AlertRow]:
    rows = []
    for alert in alerts:
        hidden = bool(alert.job_name) and alert.job_name in unreadable_jobs
        task_id = alert.run.task_id if alert.run is not None else ""
        summary = HIDDEN_SUMMARY if hidden else alert.summary
        rows.append(AlertRow(alert, alert.rule.name, task_id, summary, hidden))
    return rows


def _alerts() -> QuerySet[Alert]:
    return Alert.objects.select_related("rule", "run").only(*_ROW_COLUMNS)


def firing_alerts(
    limit: int = FIRING_LIMIT, *, unreadable_jobs: Collection[str] = ()
) -> list[AlertRow]:
    """Alerts still firing, newest first. Those of a disabled rule are left out: it is no
    longer evaluated, so they would never resolve."""
    rows = _alerts().filter(resolved_at__isnull=True, rule__enabled=True)
    return _alert_rows(rows.order_by("-fired_at", "-id")[:limit], frozenset(unreadable_jobs))


def resolved_alerts(
    limit: int = RESOLVED_LIMIT, *, unreadable_jobs: Collection[str] = ()
) -> list[AlertRow]:
    """The alerts resolved most recently."""
    rows = _alerts().filter(resolved_at__isnull=False)
    return _alert_rows(rows.order_by("-resolved_at", "-id")[:limit], frozenset(unreadable_jobs))


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


def _storable(pks: list[int]) -> list[int]:
    """Ids a primary key can hold: SQLite raises OverflowError for a larger integer in IN (...)
    (an exact lookup is bounded by Django itself), so /alerts/rules/<huge> must be a 404."""
    return [pk for pk in pks if 0 < pk < 2**63]


def rule_rows(pks: list[int] | None = None) -> list[RuleRow]:
    """Every rule by name (or those of `pks`), with its channels and how many of its alerts
    fire now."""
    rules = AlertRule.objects.prefetch_related("channels").annotate(
        firing=Count("alerts", filter=Q(alerts__resolved_at__isnull=True))
    )
    if pks is not None:
        rules = rules.filter(pk__in=_storable(pks))
    return [rule_row(rule, rule.firing) for rule in rules.order_by("name")]


def channel_rows(pks: list[int] | None = None) -> list[ChannelRow]:
    """Every channel by name (or those of `pks`), its target masked."""
    channels = AlertChannel.objects.annotate(rule_count=Count("rules"))
    if pks is not None:
        channels = channels.filter(pk__in=_storable(pks))
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


def recent_deliveries(
    limit: int = DELIVERY_LIMIT, *, unreadable_jobs: Collection[str] = ()
) -> list[DeliveryRow]:
    """The delivery log: the latest `limit` deliveries, newest first. A message's subject
    names its alert's summary (a message about one alert), so the subject of a message about
    an alert of `unreadable_jobs` (or sent by a rule watching one) is HIDDEN_SUMMARY."""
    rows = list(
        AlertDelivery.objects.select_related("message", "message__rule")
        .defer("message__payload")
        .order_by("-created_at", "-id")[:limit]
    )
    hidden = _messages_about(rows, frozenset(unreadable_jobs))
    return [
        DeliveryRow(
            delivery=delivery,
            event=delivery.message.event,
            subject=HIDDEN_SUMMARY if delivery.message_id in hidden else delivery.message.subject,
            error=first_line(delivery.last_error),
        )
        for delivery in rows
    ]


def _messages_about(rows: list[AlertDelivery], jobs: frozenset[str]) -> set[int]:
    """The messages of `rows` that may name an alert of `jobs`: sent by a rule watching one of
    them, or linked to such an alert as its "fired" or "resolved" message."""
    if not jobs or not rows:
        return set()
    found = {
        row.message_id
        for row in rows
        if row.message.rule is not None and row.message.rule.job_name in jobs
    }
    ids = [row.message_id for row in rows]
    about = Alert.objects.filter(job_name__in=jobs)
    for link in ("fired_message_id", "resolved_message_id"):
        found.update(about.filter(**{f"{link}__in": ids}).values_list(link, flat=True))
    return found


def due_soon(rows: Iterable[DeliveryRow], now: datetime | None = None) -> bool:
    """Whether a pending delivery is due within POLL_AHEAD (or is pending with no next
    attempt set): while so, the delivery log refreshes itself."""
    horizon = (now or timezone.now()) + POLL_AHEAD
    return any(
        row.is_pending
        and (row.delivery.next_attempt_at is None or row.delivery.next_attempt_at <= horizon)
        for row in rows
    )


def next_due_in(rows: Iterable[DeliveryRow], now: datetime | None = None) -> int | None:
    """Seconds until the soonest pending delivery comes within POLL_AHEAD of being due (so the
    log refreshes once then, instead of polling through a long backoff); None if none is
    pending."""
    now = now or timezone.now()
    times = [
        row.delivery.next_attempt_at
        for row in rows
        if row.is_pending and row.delivery.next_attempt_at is not None
    ]
    if not times:
        return None
    return max(1, int((min(times) - POLL_AHEAD - now).total_seconds()) + 1)


def evaluation(now: datetime | None = None) -> Evaluation:
    """When alerts were last evaluated, and, if not within EVALUATION_STALE, whether a beat
    leads (the evaluator runs on beat's schedule). Never raises over Redis."""
    now = now or timezone.now()
    last = RollupMark.objects.filter(name=EVALUATED_MARK).values_list("upto", flat=True).first()
    stale = last is None or now - last > EVALUATION_STALE
    return Evaluation(last=last, stale=stale, beat=beat_leading() if stale else None)


def beat_leading() -> bool | None:
    """Whether a beat holds the leader lock in the broker's Redis (TaskdeckScheduler renews it
    every few seconds and it expires when a beat dies); None when Redis cannot be asked (it is
    down, or the broker is not Redis)."""
    key = str(getattr(settings, "TASKDECK_BEAT_LOCK_KEY", "") or DEFAULT_LOCK_KEY)
    try:
        return bool(presence.client().exists(key))
    except (RedisError, OSError, ValueError, ImproperlyConfigured) as error:
        logger.info("Could not look for the beat leader lock: %s", error)
        return None


def alerts_page(*, unreadable_jobs: Collection[str] = ()) -> AlertsPage:
    return AlertsPage(
        firing=firing_alerts(unreadable_jobs=unreadable_jobs),
        resolved=resolved_alerts(unreadable_jobs=unreadable_jobs),
        rules=rule_rows(),
        channels=channel_rows(),
        deliveries=recent_deliveries(unreadable_jobs=unreadable_jobs),
        evaluation=evaluation(),
    )


__all__ = [
    "DELIVERY_LIMIT",
    "HIDDEN_SUMMARY",
    "AlertRow",
    "AlertsPage",
    "ChannelRow",
    "DeliveryRow",
    "Evaluation",
    "RuleRow",
    "alerts_page",
    "beat_leading",
    "channel_rows",
    "channel_target",
    "due_soon",
    "duration_words",
    "email_addresses",
    "evaluation",
    "firing_alerts",
    "first_line",
    "mask_url",
    "next_due_in",
    "recent_deliveries",
    "resolved_alerts",
    "rule_rows",
    "scope_words",
]
