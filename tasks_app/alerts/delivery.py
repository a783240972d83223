"""Message delivery: a PENDING `AlertDelivery` per message and channel, sent by the
`taskdeck.deliver_alerts` job with retries and exponential backoff.

At most once per attempt, at least once per message: a sender claims a delivery with a
conditional UPDATE (`claimed_until`, counting the attempt) before it sends, and records the
outcome only while its claim holds, so two senders never send the same attempt. A sender that
dies mid-attempt leaves a claim that runs out; the delivery is then picked up again (the attempt
it lost still counts, so a message that kills its sender cannot be tried forever).

Nothing here waits on a receiver inside a web request: `enqueue_message` and `send_test` only
write rows and publish the job after the transaction commits (`kick`).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import F, Min, Q, QuerySet
from django.utils import timezone

from ..models import (
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertMessage,
    DeliveryState,
)
from . import channels

logger = logging.getLogger(__name__)

DELIVER_JOB = "taskdeck.deliver_alerts"
DELIVER_QUEUE = "high"
# A claim lasts the channel's timeout plus this margin: long enough that a live sender always
# records its attempt before the claim runs out.
CLAIM_MARGIN_SECONDS = 60
MAX_BACKOFF_SECONDS = 3600
# Retries due within this many seconds get a kick with a countdown instead of waiting for the
# job's 15 s schedule.
KICK_HORIZON_SECONDS = 15.0
# A kick nobody consumed (no worker) is dropped after this long: the schedule catches up.
KICK_EXPIRES_SECONDS = 300
# One pass stops claiming after this long (receivers that all hang) and kicks a fresh pass for
# the rest, so one pool process is not held for limit * timeout.
PASS_BUDGET_SECONDS = 60.0
LAST_ERROR_CHARS = 1000


def enqueue_message(message: AlertMessage) -> list[AlertDelivery]:
    """One PENDING delivery of `message` to each enabled channel of its rule (at most one per
    channel, whoever calls this and however often), sent once the transaction commits."""
    if message.rule is None:
        return []
    targets = list(message.rule.channels.filter(enabled=True))
    if targets:
        AlertDelivery.objects.bulk_create(
            [
                AlertDelivery(message=message, channel=channel, channel_name=channel.name)
                for channel in targets
            ],
            ignore_conflicts=True,  # the unique (message, channel): never two deliveries
        )
        transaction.on_commit(kick)
    return list(AlertDelivery.objects.filter(message=message).order_by("id"))


def send_test(channel: AlertChannel) -> AlertDelivery:
    """A TEST message to `channel` (enabled or not: testing comes before enabling), delivered
    asynchronously like any other message."""
    subject = f"Taskdeck test message for channel {channel.name}"
    message = AlertMessage.objects.create(
        rule=None,
        event=AlertEvent.TEST,
        alert_count=0,
        subject=subject,
        payload={
            "event": AlertEvent.TEST.value,
            "subject": subject,
            "rule": None,
            "alert_count": 0,
            "alerts": [],
            "more": 0,
        },
    )
    delivery = AlertDelivery.objects.create(
        message=message, channel=channel, channel_name=channel.name
    )
    transaction.on_commit(kick)
    return delivery


def kick(countdown: float = 0.0) -> None:
    """Publish a delivery pass (after `countdown` seconds). A broker error is logged, never
    raised: the job's schedule catches up."""
    try:
        current_app.send_task(
            DELIVER_JOB,
            queue=DELIVER_QUEUE,
            countdown=countdown if countdown > 0 else None,
            expires=countdown + KICK_EXPIRES_SECONDS,
            retry=False,
        )
    except Exception:
        logger.warning(
            "Could not publish %s; its schedule will deliver", DELIVER_JOB, exc_info=True
        )


def deliver_due(now: datetime | None = None, limit: int = 100) -> dict[str, int]:
    """Attempt at most `limit` pending deliveries whose time has come (oldest first); returns
    counts: sent, retrying, failed, and skipped (claimed by another sender first). `now` fixes
    the clock (tests); by default each attempt reads it."""
    counts = {"sent": 0, "retrying": 0, "failed": 0, "skipped": 0}
    started = time.monotonic()
    clock = now or timezone.now()
    due = list(
        _claimable(clock)
        .filter(next_attempt_at__lte=clock)
        .order_by("next_attempt_at", "id")
        .values_list("id", "channel__timeout_seconds")[:limit]
    )
    for delivery_id, timeout in due:
        if time.monotonic() - started > PASS_BUDGET_SECONDS:
            break  # the kick below starts a fresh pass, on whichever process is free
        at = now or timezone.now()
        claim = at + timedelta(seconds=(timeout or 0) + CLAIM_MARGIN_SECONDS)
        delivery = _claim(delivery_id, at, claim)
        if delivery is None:
            counts["skipped"] += 1
            continue
        counts[_attempt(delivery, at)] += 1
    _kick_for_retries(now or timezone.now())
    return counts


def retry_delay(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: BASE, 2*BASE, 4*BASE...
    at most an hour."""
    base = float(settings.TASKDECK_ALERT_RETRY_BASE_SECONDS)
    return float(min(MAX_BACKOFF_SECONDS, base * 2 ** max(attempts - 1, 0)))


def _claimable(at: datetime) -> QuerySet[AlertDelivery]:
    """Pending deliveries no live sender holds."""
    return AlertDelivery.objects.filter(state=DeliveryState.PENDING).filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lte=at)
    )


def _claim(delivery_id: int, at: datetime, claim: datetime) -> AlertDelivery | None:
    """Take the delivery until `claim` and count the attempt, unless another sender took it
    first (the UPDATE's condition is the check: no check-then-act)."""
    taken = (
        _claimable(at)
        .filter(pk=delivery_id, next_attempt_at__lte=at)
        .update(claimed_until=claim, attempts=F("attempts") + 1)
    )
    if not taken:
        return None
    return AlertDelivery.objects.select_related("message", "channel").get(pk=delivery_id)


def _attempt(delivery: AlertDelivery, at: datetime) -> str:
    """Send once and record how it went; returns the count it adds to ("sent", ...)."""
    started = time.monotonic()
    channel = delivery.channel
    if channel is None:
        outcome = channels.Outcome(ok=False, error="The channel was deleted.", final=True)
    elif not channel.enabled and delivery.message.event != AlertEvent.TEST:
        outcome = channels.Outcome(ok=False, error="Not sent: the channel is disabled.", final=True)
    else:
        try:
            outcome = channels.send(
                channel, delivery.message, delivery_id=delivery.pk, attempt=delivery.attempts, at=at
            )
        except Exception as error:  # a bug must not leave the claim to run out unexplained
            logger.exception("Alert delivery %s crashed", delivery.pk)
            outcome = channels.Outcome(ok=False, error=f"{type(error).__name__}: {error}")
    duration_ms = round((time.monotonic() - started) * 1000)
    max_attempts = channel.max_attempts if channel is not None else 1
    changes: dict[str, object] = {
        "claimed_until": None,
        "response_status": outcome.status,
        "last_error": outcome.error[:LAST_ERROR_CHARS],
        "duration_ms": duration_ms,
    }
    if outcome.ok:
        verdict = "sent"
        changes.update(state=DeliveryState.SENT, sent_at=at)
    elif outcome.final or delivery.attempts >= max_attempts:
        verdict = "failed"
        changes.update(state=DeliveryState.FAILED)
    else:
        verdict = "retrying"
        changes.update(next_attempt_at=at + timedelta(seconds=retry_delay(delivery.attempts)))
    recorded = AlertDelivery.objects.filter(
        pk=delivery.pk, state=DeliveryState.PENDING, claimed_until=delivery.claimed_until
    ).update(**changes)
    if not recorded:
        # Only when an attempt outlived its claim (it cannot: the claim is the timeout plus a
        # margin), and another sender has taken the delivery since: its record stands.
        logger.warning("Alert delivery %s: claim lost before recording the attempt", delivery.pk)
    return verdict


def _kick_for_retries(at: datetime) -> None:
    """Kick a pass for when the next unclaimed delivery is due, if that is soon (at once for
    what this pass left: over its limit or budget, or created meanwhile)."""
    first = _claimable(at).aggregate(first=Min("next_attempt_at"))["first"]
    if first is None:
        return
    wait = (first - timezone.now()).total_seconds()
    if wait <= KICK_HORIZON_SECONDS:
        kick(countdown=max(wait, 0.0))
