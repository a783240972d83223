"""From alerts to messages: grouping, throttling and the payload every channel sends.

A rule sends at most one "fired" message per throttle window: the first alert after a quiet
window goes out at once, later ones wait (their `fired_message` stays NULL) until the window has
passed, when one message counts them all. Resolutions go out as one "resolved" message per rule
per pass. Each step runs in a transaction that locks the rule's row, so two evaluations at once
(the worker's hook and the periodic job, or two workers) never both send for the same window,
and a message, its alerts' links and its deliveries are written together or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.urls import NoReverseMatch, reverse

from ..models import Alert, AlertEvent, AlertMessage, AlertRule
from . import delivery

# A payload lists this many alerts; "more" counts the rest.
PAYLOAD_ALERTS = 20
# One message never stands for more alerts than this (the rest go in the next one).
MESSAGE_ALERTS = 5000
# Unthrottled rules send one message per alert, at most this many per pass.
UNTHROTTLED_PER_PASS = 200
# Held-back alerts older than the window plus this are no longer announced; resolutions older
# than this are no longer reported (the periodic job was down for that long).
HORIZON = timedelta(days=7)
SUBJECT_CHARS = 300
ERROR_CHARS = 300


def first_line(text: str, limit: int = ERROR_CHARS) -> str:
    """An error as a message may show it: its first line, cut to `limit` characters."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def announce_fired(rule_id: int, now: datetime) -> list[AlertMessage]:
    """Send the "fired" messages the rule's throttle allows now: one for every alert not yet
    announced if the window since the rule's last one has passed (or one per alert for an
    unthrottled rule); nothing while the window holds."""
    with transaction.atomic():
        rule = _locked(rule_id)
        if rule is None:
            return []
        window = timedelta(minutes=rule.throttle_minutes)
        held = Alert.objects.filter(
            rule=rule, fired_message__isnull=True, fired_at__gte=now - window - HORIZON
        ).order_by("fired_at", "id")
        if not window:
            each = list(held.values_list("id", flat=True)[:UNTHROTTLED_PER_PASS])
            return [_send(rule, AlertEvent.FIRED, [pk], now) for pk in each]
        ids = list(held.values_list("id", flat=True)[:MESSAGE_ALERTS])
        if not ids:
            return []
        last = (
            AlertMessage.objects.filter(rule=rule, event=AlertEvent.FIRED)
            .order_by("-created_at")
            .values_list("created_at", flat=True)
            .first()
        )
        if last is not None and last > now - window:
            return []  # the window holds: the next pass after it counts these
        return [_send(rule, AlertEvent.FIRED, ids, now)]


def announce_resolved(rule_id: int, now: datetime) -> AlertMessage | None:
    """One "resolved" message for the rule's alerts resolved since the last one. Only alerts
    announced before they resolved: one still held back (or fired and resolved in the same
    pass) is reported, resolved, in the "fired" message that counts it."""
    with transaction.atomic():
        rule = _locked(rule_id)
        if rule is None or not rule.notify_resolved:
            return None
        ids = list(
            Alert.objects.filter(
                rule=rule,
                resolved_at__gte=now - HORIZON,
                resolved_message__isnull=True,
                fired_message__created_at__lt=F("resolved_at"),
            )
            .order_by("resolved_at", "id")
            .values_list("id", flat=True)[:MESSAGE_ALERTS]
        )
        if not ids:
            return None
        return _send(rule, AlertEvent.RESOLVED, ids, now)


def _locked(rule_id: int) -> AlertRule | None:
    """The enabled rule, its row locked until the transaction ends (SQLite's IMMEDIATE
    transactions lock the whole database instead)."""
    return AlertRule.objects.select_for_update().filter(pk=rule_id, enabled=True).first()


def _send(rule: AlertRule, event: AlertEvent, ids: list[int], now: datetime) -> AlertMessage:
    """Write the message for these alerts, link them to it and queue its deliveries (the
    delivery module kicks the sender once this transaction commits)."""
    position = {pk: n for n, pk in enumerate(ids)}
    shown = sorted(
        Alert.objects.filter(pk__in=ids[:PAYLOAD_ALERTS])
        .select_related("run")
        .defer("run__params", "run__args", "run__log"),
        key=lambda alert: position[alert.pk],
    )
    subject = subject_for(rule, event, shown, len(ids))
    message = AlertMessage.objects.create(
        rule=rule,
        event=event,
        alert_count=len(ids),
        subject=subject,
        payload=build_payload(event, subject, rule, shown, len(ids)),
        created_at=now,
    )
    link = "fired_message" if event == AlertEvent.FIRED else "resolved_message"
    Alert.objects.filter(pk__in=ids).update(**{link: message})
    delivery.enqueue_message(message)
    return message


def subject_for(rule: AlertRule, event: AlertEvent, alerts: Sequence[Alert], count: int) -> str:
    what = alerts[0].summary if count == 1 and alerts else f"{count} alerts"
    prefix = "[Taskdeck] Resolved: " if event == AlertEvent.RESOLVED else "[Taskdeck] "
    subject = f"{prefix}{rule.name}: {what}"
    return subject if len(subject) <= SUBJECT_CHARS else subject[: SUBJECT_CHARS - 1] + "…"


def build_payload(
    event: AlertEvent,
    subject: str,
    rule: AlertRule | None,
    alerts: Sequence[Alert],
    count: int,
) -> dict[str, Any]:
    """The Taskdeck JSON body (see the README). Never a run's parameters: they may be secret."""
    shown = [alert_entry(alert) for alert in alerts[:PAYLOAD_ALERTS]]
    return {
        "event": str(event),
        "subject": subject,
        "rule": None if rule is None else {"id": rule.pk, "name": rule.name, "kind": rule.kind},
        "alert_count": count,
        "alerts": shown,
        "more": max(0, count - len(shown)),
    }


def alert_entry(alert: Alert) -> dict[str, Any]:
    task_id = str(alert.details.get("task_id") or "") or None
    state = alert.run.state if alert.run is not None else alert.details.get("state")
    return {
        "id": alert.pk,
        "summary": alert.summary,
        "job": alert.job_name or None,
        "schedule": alert.schedule_name or None,
        "task_id": task_id,
        "state": state,
        "url": run_url(task_id) if task_id else None,
        "fired_at": alert.fired_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }


def run_url(task_id: str) -> str | None:
    """The run's page at TASKDECK_BASE_URL, or None when no base URL is set."""
    base = str(settings.TASKDECK_BASE_URL or "")
    if not base:
        return None
    try:
        return base + reverse("tasks_app:run", kwargs={"task_id": task_id})
    except NoReverseMatch:  # the host project mounts no pages
        return None
