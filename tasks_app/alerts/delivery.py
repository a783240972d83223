"""Message delivery: a PENDING `AlertDelivery` per message and channel, sent by the
`taskdeck.deliver_alerts` job with retries and exponential backoff.

At most once per attempt, at least once per message: a sender claims a delivery with a
conditional UPDATE (`claimed_until`, counting the attempt) before it sends, and records the
outcome only while its claim holds, so two senders never send the same attempt. A sender that
dies mid-attempt leaves a claim that runs out; the delivery is then picked up again (the attempt
it lost still counts, so a message that kills its sender cannot be tried forever).

Nothing here waits on a receiver inside a web request: `enqueue_message` and `send_test` only
write rows and publish the job after the transaction commits (`kick`, once per transaction
however many messages it queued).

Receivers that hang must not tie up the worker: one pass at a time across all workers (a lock
in the broker's Redis; a pass that finds it taken leaves at once, since the holder kicks a
follow-up for whatever it leaves), a pass stops claiming once PASS_BUDGET_SECONDS are spent, and
a channel that timed out is not tried again in the same pass. So a pass holds a worker process
for about the budget plus one channel timeout, and other work on the queue runs between passes.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import redis
from celery import current_app
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import F, Min, Q, QuerySet
from django.utils import timezone
from redis.exceptions import LockError, RedisError
from redis.lock import Lock

from ..models import (
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertMessage,
    DeliveryState,
)
from ..schedules.beat import lock_redis_url
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
# One pass stops claiming after this long (receivers that hang) and kicks a follow-up for the
# rest, so it holds a pool process for about this plus one channel timeout.
PASS_BUDGET_SECONDS = 3.0
# A pass's follow-up waits at least this long: what else is queued runs first.
FOLLOW_UP_SECONDS = 1.0
# The one-pass-at-a-time lock, in the broker's Redis. Its holder keeps it for the attempt in
# hand (the channel's timeout) plus this margin; a holder that dies frees it after as long.
LOCK_KEY = "taskdeck:alerts:delivery-pass"
LOCK_MARGIN_SECONDS = 30
REDIS_TIMEOUT_SECONDS = 5.0
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
        _kick_on_commit()
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
    _kick_on_commit()
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
    """Attempt at most `limit` pending deliveries whose time has come (oldest first), unless
    another pass is running; returns counts: sent, retrying, failed, skipped (claimed by another
    sender first) and busy (1: another pass was running, this one did nothing). `now` fixes
    the clock (tests); by default each attempt reads it."""
    counts = {"sent": 0, "retrying": 0, "failed": 0, "skipped": 0, "busy": 0}
    clock = now or timezone.now()
    due = _claimable(clock).filter(next_attempt_at__lte=clock)
    if not due.exists():  # the usual case: no need to ask Redis for the lock
        _kick_for_retries(now or timezone.now())
        return counts
    lock = _PassLock()
    if not lock.acquire():
        counts["busy"] = 1  # the holder kicks a follow-up for what it leaves
        return counts
    try:
        _deliver(due, now, limit, lock, counts)
    finally:
        lock.release()
    # After the release: a kick for a delivery queued after this check finds the lock free.
    _kick_for_retries(now or timezone.now(), left_behind=True)
    return counts


def _deliver(
    due: QuerySet[AlertDelivery],
    now: datetime | None,
    limit: int,
    lock: _PassLock,
    counts: dict[str, int],
) -> None:
    """The pass itself, under the lock: claim and attempt each delivery in turn until the
    budget is spent."""
    started = time.monotonic()
    hanging: set[int] = set()  # channels that timed out in this pass
    rows = due.order_by("next_attempt_at", "id").values_list(
        "id", "channel_id", "channel__timeout_seconds"
    )
    for delivery_id, channel_id, timeout in rows[:limit]:
        if time.monotonic() - started > PASS_BUDGET_SECONDS:
            return  # the follow-up kick starts a fresh pass, behind what else is queued
        if channel_id in hanging:
            continue  # it would most likely hang again: left for a later pass
        if not lock.keep(timeout or 0):
            return  # another pass may be running now
        at = now or timezone.now()
        claim = at + timedelta(seconds=(timeout or 0) + CLAIM_MARGIN_SECONDS)
        delivery = _claim(delivery_id, at, claim)
        if delivery is None:
            counts["skipped"] += 1
            continue
        verdict, timed_out = _attempt(delivery, at)
        counts[verdict] += 1
        if timed_out:
            hanging.add(channel_id)


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


def _attempt(delivery: AlertDelivery, at: datetime) -> tuple[str, bool]:
    """Send once and record how it went; returns the count it adds to ("sent", ...) and
    whether the receiver took the whole timeout."""
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
    return verdict, outcome.timed_out


def _kick_for_retries(at: datetime, *, left_behind: bool = False) -> None:
    """Kick a pass for when the next unclaimed delivery is due, if that is soon. After a pass
    (`left_behind`: what it left over its limit or budget, retries, deliveries created
    meanwhile) the kick waits at least FOLLOW_UP_SECONDS."""
    first = _claimable(at).aggregate(first=Min("next_attempt_at"))["first"]
    if first is None:
        return
    wait = (first - timezone.now()).total_seconds()
    if wait <= KICK_HORIZON_SECONDS:
        kick(countdown=max(wait, FOLLOW_UP_SECONDS if left_behind else 0.0))


def _kick_on_commit() -> None:
    """`kick` once the transaction commits: once per transaction, however many messages it
    queues (an evaluation pass may write hundreds). Django drops the callback with a rolled
    back savepoint, so a later message in the transaction registers it again."""
    connection = transaction.get_connection()
    if connection.in_atomic_block and any(
        callback is kick for _savepoints, callback, _robust in connection.run_on_commit
    ):
        return
    transaction.on_commit(kick)


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()


def _redis() -> redis.Redis:
    """A client of the broker's Redis, one per URL (redis-py pools connections, is thread-safe
    and starts afresh in a forked child). Raises ImproperlyConfigured for another broker."""
    configured: Any = current_app.conf.broker_write_url or current_app.conf.broker_url
    if isinstance(configured, list | tuple):
        configured = configured[0] if configured else ""
    url = lock_redis_url(str(configured or ""))
    with _clients_lock:
        if url not in _clients:
            _clients[url] = redis.Redis.from_url(
                url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            )
        return _clients[url]


class _PassLock:
    """One delivery pass at a time, across workers: a Redis lock that expires (a holder that
    dies frees it) and that its holder keeps for each attempt it starts. Without Redis (down,
    or another broker) passes run unlocked: the claims still keep each attempt to one sender,
    and no kick reaches a worker then anyway."""

    def __init__(self) -> None:
        self._lock: Lock | None = None

    def acquire(self) -> bool:
        try:
            lock = Lock(_redis(), LOCK_KEY, timeout=LOCK_MARGIN_SECONDS, thread_local=False)
            if not lock.acquire(blocking=False):
                return False
        except (RedisError, ImproperlyConfigured) as error:
            logger.warning("Delivering alerts without the pass lock: %s", error)
            return True
        self._lock = lock
        return True

    def keep(self, attempt_seconds: float) -> bool:
        """Hold the lock for an attempt of up to `attempt_seconds`; False once it was lost
        (it expired and another pass may hold it now)."""
        if self._lock is None:
            return True
        try:
            self._lock.extend(attempt_seconds + LOCK_MARGIN_SECONDS, replace_ttl=True)
        except LockError:
            logger.warning("The alert delivery pass lost its lock; stopping the pass")
            return False
        except RedisError as error:
            logger.warning("Could not extend the alert delivery pass lock: %s", error)
        return True

    def release(self) -> None:
        if self._lock is None:
            return
        try:
            self._lock.release()
        except RedisError as error:  # it expired, or Redis is away: it expires anyway
            logger.warning("Could not release the alert delivery pass lock: %s", error)
