"""Alert delivery against a real local HTTP receiver and the real database: signed webhooks,
retries with backoff, timeouts, one pass at a time however many are started, refused private
addresses and bad URLs, email, test messages, and the `taskdeck.deliver_alerts` job on the
session's real worker."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.mail import EmailMessage
from django.db import close_old_connections, connection, transaction
from django.test import override_settings
from django.utils import timezone

from tasks_app.alerts import delivery, messages
from tasks_app.models import (
    Alert,
    AlertChannel,
    AlertChannelKind,
    AlertDelivery,
    AlertEvent,
    AlertMessage,
    AlertRule,
    AlertRuleKind,
    DeliveryState,
    Run,
    RunState,
    WebhookFormat,
)
from tests.support.receiver import ReceivedRequest, WebhookReceiver
from tests.support.services import WorkerProcess, wait_for

SECRET = "test-channel-secret"
NOTHING = {"sent": 0, "retrying": 0, "failed": 0, "skipped": 0, "busy": 0}
DELIVERY_FIELDS = {"delivery_id", "attempt", "sent_at"}


# Passes kick the job (retries due soon) on the real broker, emptied after each test.
pytestmark = pytest.mark.usefixtures("broker")


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


def webhook(url: str, name: str = "hook", **fields: Any) -> AlertChannel:
    values: dict[str, Any] = {
        "kind": AlertChannelKind.WEBHOOK, "url": url, "secret": SECRET,
        "timeout_seconds": 5, "max_attempts": 5, **fields,
    }  # fmt: skip
    return AlertChannel.objects.create(name=name, **values)


def rule_for(*channels: AlertChannel, name: str = "Failures") -> AlertRule:
    rule = AlertRule.objects.create(name=name, kind=AlertRuleKind.RUN_FAILED, throttle_minutes=0)
    rule.channels.set(channels)
    return rule


def fired_message(rule: AlertRule, summary: str = "demo.fail failed: boom") -> AlertMessage:
    """A message shaped as the evaluator writes it (see tasks_app.alerts.messages)."""
    subject = f"[Taskdeck] {rule.name}: {summary}"
    alert = {
        "id": 1, "summary": summary, "job": "demo.fail", "schedule": None, "task_id": "t-1",
        "state": "FAILURE", "url": "https://taskdeck.example.com/runs/t-1/",
        "fired_at": "2025-03-01T12:00:00+00:00", "resolved_at": None,
    }  # fmt: skip
    payload = {
        "event": "fired", "subject": subject,
        "rule": {"id": rule.pk, "name": rule.name, "kind": rule.kind},
        "alert_count": 1, "alerts": [alert], "more": 0,
    }  # fmt: skip
    return AlertMessage.objects.create(
        rule=rule, event=AlertEvent.FIRED, subject=subject, payload=payload
    )


def queued(channel: AlertChannel, rule_name: str = "Failures") -> AlertDelivery:
    [queued_delivery] = delivery.enqueue_message(fired_message(rule_for(channel, name=rule_name)))
    return queued_delivery


def verified(request: ReceivedRequest, secret: str = SECRET) -> dict[str, Any]:
    """The receiver's check, as the README shows it: HMAC-SHA256 of the raw body, compared in
    constant time; then the body decoded."""
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-taskdeck-signature"], expected)
    decoded: dict[str, Any] = json.loads(request.body)
    return decoded


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def in_threads(count: int, target: Callable[[], dict[str, int]]) -> list[dict[str, int]]:
    """Run `target` in `count` threads released at the same moment, each on its own database
    connection."""
    start = threading.Barrier(count)
    results: list[dict[str, int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            start.wait()
            results.append(target())
        except BaseException as error:  # reported by the caller
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(results) == count
    return results


@pytest.mark.django_db
def test_a_200_receiver_gets_one_signed_post_without_run_parameters(
    receiver: WebhookReceiver,
) -> None:
    now = timezone.now()
    rule = rule_for(webhook(receiver.url + "/hooks/taskdeck"))
    run = Run.objects.create(
        task_id="t-secret", job_name="demo.fail", state=RunState.FAILURE, queued_at=now,
        finished_at=now, params={"api_key": "hunter2-param"}, args=["hunter2-arg"],
    )  # fmt: skip
    Alert.objects.create(
        rule=rule, key="run:t-secret", run=run, job_name="demo.fail",
        summary="demo.fail failed: boom", details={"task_id": "t-secret", "state": "FAILURE"},
    )  # fmt: skip
    [message] = messages.announce_fired(rule.pk, now)  # the evaluator's path: it enqueues

    assert delivery.deliver_due() == {**NOTHING, "sent": 1}

    [request] = receiver.wait_for(1)
    sent = AlertDelivery.objects.get(message=message)
    assert (request.method, request.path) == ("POST", "/hooks/taskdeck")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Taskdeck-Alerts/1"
    assert request.headers["x-taskdeck-event"] == "fired"
    assert request.headers["x-taskdeck-delivery"] == str(sent.pk)
    body = verified(request)
    assert {key: body[key] for key in body if key not in DELIVERY_FIELDS} == message.payload
    assert (body["delivery_id"], body["attempt"]) == (sent.pk, 1)
    assert datetime.fromisoformat(body["sent_at"]) == sent.sent_at
    assert body["alerts"][0]["task_id"] == "t-secret"
    assert b"hunter2" not in request.body  # the run's parameters and arguments stay home
    assert (sent.state, sent.attempts, sent.response_status) == (DeliveryState.SENT, 1, 200)
    assert (sent.last_error, sent.claimed_until) == ("", None)
    assert sent.duration_ms is not None

    assert delivery.deliver_due() == NOTHING  # sent once: nothing left to send
    assert len(receiver.requests) == 1


@pytest.mark.django_db
@override_settings(TASKDECK_ALERT_RETRY_BASE_SECONDS=10)
def test_a_500_receiver_is_retried_with_doubling_backoff_then_failed(
    receiver: WebhookReceiver,
) -> None:
    receiver.respond_with(500, 500, 500, 500)
    pending = queued(webhook(receiver.url, max_attempts=4))
    due = pending.next_attempt_at
    gaps: list[float] = []
    for attempt in range(1, 5):
        # A second early: not due, nothing sent.
        assert delivery.deliver_due(now=due - timedelta(seconds=1)) == NOTHING
        assert len(receiver.requests) == attempt - 1
        counts = delivery.deliver_due(now=due)
        pending.refresh_from_db()
        assert len(receiver.requests) == attempt  # one request per attempt, never two
        assert pending.attempts == attempt
        assert (pending.response_status, pending.claimed_until) == (500, None)
        assert pending.last_error.startswith("HTTP 500 (Internal Server Error)")
        if attempt < 4:
            assert counts == {**NOTHING, "retrying": 1}
            assert pending.state == DeliveryState.PENDING
            gaps.append((pending.next_attempt_at - due).total_seconds())
            due = pending.next_attempt_at
        else:
            assert counts == {**NOTHING, "failed": 1}
    assert gaps == [10, 20, 40]
    assert pending.state == DeliveryState.FAILED
    assert pending.sent_at is None
    bodies = [verified(request) for request in receiver.requests]
    assert [body["attempt"] for body in bodies] == [1, 2, 3, 4]
    assert {request.headers["x-taskdeck-delivery"] for request in receiver.requests} == {
        str(pending.pk)
    }
    # Failed is final: however late a pass comes, nothing more is sent.
    assert delivery.deliver_due(now=due + timedelta(days=1)) == NOTHING
    assert len(receiver.requests) == 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_passes_take_turns_and_send_each_due_delivery_exactly_once(
    receiver: WebhookReceiver,
) -> None:
    receiver.delay_seconds = 0.05  # each attempt stays open a moment: overlapping passes show
    rule = rule_for(webhook(receiver.url + "/a", name="a"), webhook(receiver.url + "/b", name="b"))
    ids = {d.pk for _ in range(10) for d in delivery.enqueue_message(fired_message(rule))}
    assert len(ids) == 20

    results = in_threads(4, delivery.deliver_due)

    # (The session's worker may take part too, if a kick reached it: another pass, held to the
    # same lock and claims. So count at the receiver and in the database, not per pass.)
    def all_sent() -> bool:
        close_old_connections()
        states = AlertDelivery.objects.filter(pk__in=ids).values_list("state", flat=True)
        return set(states) == {DeliveryState.SENT}

    wait_for(all_sent)
    delivered = [int(request.headers["x-taskdeck-delivery"]) for request in receiver.requests]
    assert sorted(delivered) == sorted(ids)  # every delivery once, none twice
    assert set(AlertDelivery.objects.filter(pk__in=ids).values_list("attempts", flat=True)) == {1}
    assert receiver.peak_open == 1  # one attempt at a time: the passes never overlapped
    assert len([result for result in results if result["sent"]]) <= 1
    assert sum(result["failed"] + result["retrying"] for result in results) == 0


@pytest.mark.django_db
def test_one_kick_per_transaction_however_many_messages_it_queues(
    receiver: WebhookReceiver,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    rule = rule_for(webhook(receiver.url + "/a", name="a"), webhook(receiver.url + "/b", name="b"))
    with django_capture_on_commit_callbacks() as callbacks:
        try:
            with transaction.atomic():  # a savepoint: its kick goes with it...
                delivery.enqueue_message(fired_message(rule, summary="rolled back"))
                raise RuntimeError
        except RuntimeError:
            pass
        for n in range(30):  # ...and the next message registers it again, once
            delivery.enqueue_message(fired_message(rule, summary=f"failure {n}"))

    assert callbacks == [delivery.kick]
    assert AlertDelivery.objects.count() == 60


def test_hanging_receivers_get_one_pass_at_a_time_and_the_rest_is_delivered(
    worker: WorkerProcess,
) -> None:
    with WebhookReceiver() as hanging, WebhookReceiver() as healthy:
        hanging.delay_seconds = 60  # until the sender gives up
        slow = webhook(hanging.url, name="slow", timeout_seconds=1, max_attempts=1)
        fast = webhook(healthy.url, name="fast")
        rule = rule_for(slow, fast)
        with transaction.atomic():  # as an evaluation pass writes its messages
            for n in range(5):
                delivery.enqueue_message(fired_message(rule, summary=f"failure {n}"))
            kicks = [entry[1] for entry in connection.run_on_commit if entry[1] is delivery.kick]
        assert len(kicks) == 1  # committed: the worker's pass starts

        # Passes started on top of it (as by more kicks and the schedule) stand aside.
        results = in_threads(4, delivery.deliver_due)

        def all_final() -> bool:
            close_old_connections()
            return not AlertDelivery.objects.filter(state=DeliveryState.PENDING).exists()

        wait_for(all_final, timeout=90)
        assert hanging.peak_open == 1  # never two attempts at once, however many passes began
        # Released together while a pass spends a second on the hanging receiver: they found
        # the lock taken (at most one of them free, a pass ending meanwhile aside).
        assert sum(result["busy"] for result in results) >= 2
        outcomes = AlertDelivery.objects.values_list("channel_name", "state", "attempts")
        assert sorted(set(outcomes)) == [
            ("fast", DeliveryState.SENT, 1),
            ("slow", DeliveryState.FAILED, 1),
        ]
        assert set(
            AlertDelivery.objects.filter(channel=slow).values_list("last_error", flat=True)
        ) == {"Timed out after 1 s."}
        assert len(hanging.requests) == 5
        assert len(healthy.requests) == 5
        # The hanging channel did not hold the others up: its first timeout cost them one
        # timeout, then the pass sent them all before trying the hanging channel again.
        assert max(r.received_at for r in healthy.requests) < hanging.requests[1].received_at


@pytest.mark.django_db
def test_a_hanging_receiver_costs_one_timeout_and_is_retried(receiver: WebhookReceiver) -> None:
    receiver.delay_seconds = 60  # answers long after the channel's timeout
    pending = queued(webhook(receiver.url, timeout_seconds=1))
    now = timezone.now()

    started = time.monotonic()
    counts = delivery.deliver_due(now=now)
    elapsed = time.monotonic() - started

    assert elapsed < 1 * 2 + 2  # a bound (the timeout plus a generous margin), not a benchmark
    assert counts == {**NOTHING, "retrying": 1}
    assert len(receiver.wait_for(1)) == 1  # it did get the request, then hung
    pending.refresh_from_db()
    assert pending.state == DeliveryState.PENDING
    assert (pending.attempts, pending.response_status) == (1, None)
    assert pending.last_error == "Timed out after 1 s."
    assert pending.next_attempt_at > now


@pytest.mark.django_db
def test_a_receiver_trickling_its_answer_cannot_stretch_the_attempt(
    receiver: WebhookReceiver,
) -> None:
    # Each byte comes well within the socket timeout: only the attempt's deadline stops it.
    receiver.trickle_seconds = 0.05
    pending = queued(webhook(receiver.url, timeout_seconds=1))

    started = time.monotonic()
    counts = delivery.deliver_due()
    elapsed = time.monotonic() - started

    assert elapsed < 1 * 2 + 2
    assert counts == {**NOTHING, "sent": 1}  # the status came: the receiver took the message
    pending.refresh_from_db()
    assert (pending.state, pending.response_status) == (DeliveryState.SENT, 200)


@pytest.mark.django_db
def test_connection_refused_is_recorded_and_retried() -> None:
    pending = queued(webhook(f"http://127.0.0.1:{free_port()}/hook"))

    assert delivery.deliver_due() == {**NOTHING, "retrying": 1}

    pending.refresh_from_db()
    assert (pending.state, pending.attempts) == (DeliveryState.PENDING, 1)
    assert pending.response_status is None
    assert pending.last_error.startswith("ConnectionRefusedError")


@pytest.mark.django_db
@override_settings(TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE=False)
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_private_address_is_refused_at_once_and_never_contacted(
    receiver: WebhookReceiver, host: str
) -> None:
    pending = queued(webhook(f"http://{host}:{receiver.port}/hook", max_attempts=5))

    assert delivery.deliver_due() == {**NOTHING, "failed": 1}

    pending.refresh_from_db()
    assert (pending.state, pending.attempts) == (DeliveryState.FAILED, 1)  # no retries
    assert pending.last_error == f"refused: {host} resolves to a private address"
    assert pending.response_status is None
    time.sleep(0.2)  # room for a (wrongly) sent request to arrive
    assert receiver.requests == []


@pytest.mark.django_db
def test_the_host_header_keeps_the_name_while_the_connection_goes_to_its_checked_address(
    receiver: WebhookReceiver,
) -> None:
    queued(webhook(f"http://localhost:{receiver.port}/hook"))  # private addresses allowed

    assert delivery.deliver_due() == {**NOTHING, "sent": 1}

    [request] = receiver.wait_for(1)
    assert request.headers["host"] == f"localhost:{receiver.port}"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://bücher.example/hook", "The webhook URL has non-ASCII characters"),
        ("http://hooks.example/ö", "The webhook URL has non-ASCII characters"),
        ("http://hooks.example/a b", "The webhook URL contains spaces or control characters."),
        ("http://hooks.example:99999/", "The webhook URL is not a valid URL."),
    ],
)
def test_a_url_that_cannot_be_sent_to_fails_at_once_with_a_clear_error(
    url: str, error: str
) -> None:
    pending = queued(webhook(url, max_attempts=5))

    assert delivery.deliver_due() == {**NOTHING, "failed": 1}

    pending.refresh_from_db()
    assert (pending.state, pending.attempts) == (DeliveryState.FAILED, 1)
    assert pending.last_error.startswith(error)
    assert url not in pending.last_error  # a webhook URL may be a credential


@pytest.mark.django_db
def test_a_redirect_is_not_followed(receiver: WebhookReceiver) -> None:
    receiver.respond_with(302)  # with a Location on the receiver itself
    pending = queued(webhook(receiver.url))

    assert delivery.deliver_due() == {**NOTHING, "retrying": 1}

    time.sleep(0.2)  # room for a (wrongly) followed redirect to arrive
    assert [request.path for request in receiver.requests] == ["/"]
    pending.refresh_from_db()
    assert pending.response_status == 302
    assert pending.last_error.startswith("HTTP 302 (redirects are not followed)")


@pytest.mark.django_db
def test_a_disabled_channel_gets_no_delivery(receiver: WebhookReceiver) -> None:
    on = webhook(receiver.url + "/on", name="on")
    off = webhook(receiver.url + "/off", name="off", enabled=False)
    rule = rule_for(on, off)

    [only] = delivery.enqueue_message(fired_message(rule))
    assert (only.channel, only.channel_name) == (on, "on")
    # Disabled after its message was queued: not sent either.
    [late] = delivery.enqueue_message(fired_message(rule, summary="second"))
    AlertChannel.objects.filter(pk=on.pk).update(enabled=False)

    assert delivery.deliver_due() == {**NOTHING, "failed": 2}

    assert receiver.requests == []
    late.refresh_from_db()
    assert (late.state, late.last_error) == (
        DeliveryState.FAILED,
        "Not sent: the channel is disabled.",
    )


@pytest.mark.django_db
def test_enqueueing_a_message_twice_keeps_one_delivery_per_channel(
    receiver: WebhookReceiver,
) -> None:
    message = fired_message(rule_for(webhook(receiver.url)))
    first = delivery.enqueue_message(message)
    again = delivery.enqueue_message(message)
    assert [d.pk for d in again] == [d.pk for d in first]
    assert AlertDelivery.objects.filter(message=message).count() == 1


@pytest.mark.django_db
def test_the_slack_format_posts_a_text_body(receiver: WebhookReceiver) -> None:
    channel = webhook(receiver.url, payload_format=WebhookFormat.SLACK)
    queued(channel)

    assert delivery.deliver_due() == {**NOTHING, "sent": 1}

    [request] = receiver.wait_for(1)
    body = verified(request)
    assert list(body) == ["text"]
    assert body["text"] == (
        "*[Taskdeck] Failures: demo.fail failed: boom*\n"
        "• demo.fail failed: boom (<https://taskdeck.example.com/runs/t-1/|open>)"
    )


@pytest.mark.django_db
def test_an_email_channel_sends_through_the_mail_backend_to_every_address(
    mailoutbox: list[EmailMessage],
) -> None:
    channel = AlertChannel.objects.create(
        name="ops mail", kind=AlertChannelKind.EMAIL,
        email_to="ops@example.com\n\n  lead@example.com  \n",
    )  # fmt: skip
    pending = queued(channel)

    assert delivery.deliver_due() == {**NOTHING, "sent": 1}

    [mail] = mailoutbox
    assert mail.to == ["ops@example.com", "lead@example.com"]
    assert mail.subject == "[Taskdeck] Failures: demo.fail failed: boom"
    assert "- demo.fail failed: boom" in str(mail.body)
    assert "https://taskdeck.example.com/runs/t-1/" in str(mail.body)
    pending.refresh_from_db()
    assert (pending.state, pending.attempts) == (DeliveryState.SENT, 1)


@pytest.mark.django_db
def test_send_test_writes_a_test_message_delivered_by_the_next_pass(
    receiver: WebhookReceiver,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    channel = webhook(receiver.url)
    with django_capture_on_commit_callbacks() as callbacks:
        test = delivery.send_test(channel)
    assert callbacks == [delivery.kick]  # published once committed; the request never waits
    assert receiver.requests == []
    assert (test.message.event, test.message.rule, test.state) == (
        AlertEvent.TEST,
        None,
        DeliveryState.PENDING,
    )

    assert delivery.deliver_due() == {**NOTHING, "sent": 1}

    [request] = receiver.wait_for(1)
    assert request.headers["x-taskdeck-event"] == "test"
    body = verified(request)
    assert (body["event"], body["rule"], body["alerts"]) == ("test", None, [])
    test.refresh_from_db()
    assert test.state == DeliveryState.SENT


@pytest.mark.django_db
def test_a_claim_that_ran_out_is_picked_up_again_and_a_live_one_is_not(
    receiver: WebhookReceiver,
) -> None:
    abandoned = queued(webhook(receiver.url + "/abandoned", name="abandoned"), "A")
    held = queued(webhook(receiver.url + "/held", name="held"), "B")
    now = timezone.now()
    # A sender took `abandoned` and died mid-attempt; another is sending `held` right now.
    AlertDelivery.objects.filter(pk=abandoned.pk).update(
        attempts=1, claimed_until=now - timedelta(seconds=1)
    )
    AlertDelivery.objects.filter(pk=held.pk).update(
        attempts=1, claimed_until=now + timedelta(minutes=1)
    )

    assert delivery.deliver_due(now=now) == {**NOTHING, "sent": 1}

    [request] = receiver.wait_for(1)
    assert request.path == "/abandoned"
    assert verified(request)["attempt"] == 2  # the lost attempt still counts
    abandoned.refresh_from_db()
    held.refresh_from_db()
    assert (abandoned.state, abandoned.attempts) == (DeliveryState.SENT, 2)
    assert (held.state, held.attempts) == (DeliveryState.PENDING, 1)


def test_the_deliver_alerts_job_delivers_and_retries_on_the_real_worker(
    worker: WorkerProcess, receiver: WebhookReceiver
) -> None:
    receiver.respond_with(500)  # the first attempt fails; the retry is kicked with a countdown
    test = delivery.send_test(webhook(receiver.url))  # committed: kicks the job at once

    # No beat runs in the tests: both attempts come from kicks alone, the retry after the
    # worker's short retry delay (TASKDECK_ALERT_RETRY_BASE_SECONDS in its environment).
    first, second = receiver.wait_for(2, timeout=30)

    assert [first.status, second.status] == [500, 200]
    assert [verified(first)["attempt"], verified(second)["attempt"]] == [1, 2]

    def sent() -> AlertDelivery | None:
        close_old_connections()
        current = AlertDelivery.objects.get(pk=test.pk)
        return current if current.state == DeliveryState.SENT else None

    done: AlertDelivery = wait_for(sent)
    assert (done.attempts, done.response_status, done.last_error) == (2, 200, "")
    assert len(receiver.requests) == 2
