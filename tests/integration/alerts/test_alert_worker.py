"""Alerts on the real stack: a real worker's failure reaches a real local HTTP receiver exactly
once and its next success resolves it (no periodic pass needed), and a run really held in the
broker (a queue no worker consumes) passes its deadline."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest

from dashboard.celery import app as celery_app
from tasks_app import services
from tasks_app.alerts import delivery, evaluate
from tasks_app.demo import flaky
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
    RollupMark,
    Run,
    RunState,
)
from tests.support.receiver import ReceivedRequest, WebhookReceiver
from tests.support.runs import finished, operator
from tests.support.services import WorkerProcess, wait_for

SECRET = "alert-test-secret"
HELD_QUEUE = "alerts-held-test"  # consumed by no worker: a run sent there stays queued


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def signed_by_secret(request: ReceivedRequest) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers["x-taskdeck-signature"], expected)


def test_a_real_failure_reaches_the_webhook_once_and_the_worker_sends_its_recovery_once(
    worker: WorkerProcess, receiver: WebhookReceiver
) -> None:
    channel = AlertChannel.objects.create(
        name="hook", kind=AlertChannelKind.WEBHOOK, url=f"{receiver.url}/taskdeck", secret=SECRET
    )
    failing = AlertRule.objects.create(
        name="flaky fails", kind=AlertRuleKind.RUN_FAILED, job_name="demo.flaky"
    )
    failing.channels.add(channel)

    run = services.job_launch("demo.flaky", {"failure_rate": 1}, actor=operator())

    assert finished(run.task_id).state == RunState.FAILURE
    [request] = receiver.wait_for(1)
    assert request.method == "POST"
    assert request.path == "/taskdeck"
    assert signed_by_secret(request)
    body = json.loads(request.body)
    assert body["event"] == "fired"
    assert body["rule"]["name"] == "flaky fails"
    [entry] = body["alerts"]
    assert (entry["task_id"], entry["state"], entry["job"]) == (
        run.task_id,
        "FAILURE",
        "demo.flaky",
    )
    assert "failure_rate" not in request.body.decode()  # never a run's parameters
    # The worker records the attempt once the receiver has answered (its claim then ends): the
    # request arriving does not mean the record has, so wait for it before looking.
    wait_for(lambda: AlertDelivery.objects.filter(claimed_until__isnull=True).exists(), 10)

    # Evaluating and delivering again (the periodic jobs' passes) sends nothing more: a second
    # request would need a second message or delivery row, and both passes have returned.
    evaluate.evaluate_all()
    delivery.deliver_due()
    assert AlertMessage.objects.count() == 1
    [sent] = AlertDelivery.objects.all()
    assert (sent.state, sent.attempts, sent.response_status) == (DeliveryState.SENT, 1, 200)
    assert len(receiver.requests) == 1
    passes = RollupMark.objects.get(name=evaluate.EVALUATED_MARK).upto

    # The job's next run succeeds: the worker resolves the alert itself, no periodic pass. A
    # worker process whose cache of failing jobs was read before the alert fired ignores
    # successes until it reads it again (at most 10 s): run successes until one resolves it.
    alert = Alert.objects.get(rule=failing)

    def resolved_by_a_success() -> bool:
        success = services.job_launch("demo.flaky", {"failure_rate": 0}, actor=operator())
        assert finished(success.task_id).state == RunState.SUCCESS
        try:
            wait_for(lambda: Alert.objects.filter(pk=alert.pk, resolved_at__isnull=False), 2)
        except AssertionError:
            return False
        return True

    wait_for(resolved_by_a_success, timeout=30, interval=0)
    first, resolved = receiver.wait_for(2)
    assert first == request
    assert signed_by_secret(resolved)
    resolved_body = json.loads(resolved.body)
    assert resolved_body["event"] == "resolved"
    assert resolved_body["alerts"][0]["task_id"] == run.task_id
    # No evaluation pass ran meanwhile (each one moves this mark).
    assert RollupMark.objects.get(name=evaluate.EVALUATED_MARK).upto == passes

    evaluate.evaluate_all()
    delivery.deliver_due()
    assert AlertMessage.objects.filter(event=AlertEvent.RESOLVED).count() == 1
    assert AlertDelivery.objects.filter(state=DeliveryState.SENT).count() == 2
    assert len(receiver.requests) == 2


def test_a_run_held_in_the_broker_passes_its_deadline_once(broker: str, db: None) -> None:
    waiting = AlertRule.objects.create(
        name="stuck in queue", kind=AlertRuleKind.QUEUED_TOO_LONG, threshold_seconds=120
    )

    def held() -> int:
        with celery_app.connection_for_write() as conn:
            return int(conn.default_channel.client.llen(HELD_QUEUE))  # type: ignore[attr-defined]

    try:
        result = flaky.apply_async(kwargs={"failure_rate": 0}, queue=HELD_QUEUE)
        run = Run.objects.get(task_id=result.id)
        assert (run.state, run.queue) == (RunState.PENDING, HELD_QUEUE)
        assert held() == 1  # really in the broker, waiting for a worker

        before = evaluate.evaluate_all(run.queued_at + timedelta(seconds=119))
        first = evaluate.evaluate_all(run.queued_at + timedelta(seconds=121))
        second = evaluate.evaluate_all(run.queued_at + timedelta(seconds=180))

        assert (before["fired"], first["fired"], second["fired"]) == (0, 1, 0)
        [alert] = Alert.objects.filter(rule=waiting)
        assert (alert.key, alert.run_id) == (f"run:{run.task_id}", run.pk)
        assert alert.summary == (
            f"demo.flaky has waited over 2 min on queue {HELD_QUEUE} without starting"
        )
        assert AlertMessage.objects.filter(rule=waiting, event=AlertEvent.FIRED).count() == 1
        assert held() == 1  # still held: nothing consumed it
    finally:
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge(HELD_QUEUE)  # type: ignore[attr-defined]
