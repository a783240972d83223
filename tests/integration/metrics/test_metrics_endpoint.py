"""/metrics: off unless a token is set, then only for a scraper that sends it (bearer or basic
auth, no session, no login redirect); Prometheus text or OpenMetrics by the Accept header; the
values parsed back with prometheus_client's own parsers match the ledger, the rolled-up stats,
the broker (a message held in a queue), the presence set (real workers), the beat leader lock,
the open alerts and the time of the last alert evaluation; a broker that is down or is not
Redis is reported in the values, never as an error."""

from __future__ import annotations

import base64
import logging
import math
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client
from django.utils import timezone
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families
from redis.lock import Lock

from dashboard.celery import app as celery_app
from tasks_app.alerts.evaluate import EVALUATED_MARK
from tasks_app.demo import add
from tasks_app.metrics import rollup
from tasks_app.models import Alert, AlertRule, AlertRuleKind, RollupMark, Run, RunState
from tasks_app.worker import presence
from tests.support.services import WorkerProcess, use_broker, wait_for

TOKEN = "scrape-Secret-42"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def token(settings: Any) -> str:
    settings.TASKDECK_METRICS_TOKEN = TOKEN
    return TOKEN


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def scrape(client: Client, **headers: str) -> Samples:
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200, response.content
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


# --- access


@pytest.mark.django_db
@pytest.mark.parametrize("authorization", ["", f"Bearer {TOKEN}", basic("prometheus", TOKEN)])
def test_off_unless_a_token_is_set(client: Client, authorization: str) -> None:
    response = client.get("/metrics", headers={"Authorization": authorization})
    assert response.status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (f"Bearer {TOKEN}", 200),
        (f"bearer   {TOKEN}", 200),
        (basic("prometheus", TOKEN), 200),
        (basic("", TOKEN), 200),  # the user name is not checked
        ("", 401),
        ("Bearer", 401),
        ("Bearer wrong", 401),
        (f"Bearer {TOKEN}x", 401),
        (f"Token {TOKEN}", 401),
        (basic("prometheus", "wrong"), 401),
        (basic(TOKEN, ""), 401),  # the token is the password, not the user name
        ("Basic " + base64.b64encode(TOKEN.encode()).decode(), 401),  # no colon
        ("Basic !!not-base64!!", 401),
        ("Basic " + base64.b64encode(b"p:\xff\xfe").decode(), 401),  # not UTF-8
    ],
)
def test_the_token_as_bearer_or_basic_password(
    client: Client, token: str, broker: str, authorization: str, status: int
) -> None:
    response = client.get("/metrics", headers={"Authorization": authorization})

    assert response.status_code == status, authorization
    if status == 401:
        assert response["WWW-Authenticate"] == 'Basic realm="taskdeck-metrics"'
        assert TOKEN.encode() not in response.content
    else:
        assert b"taskdeck_runs_active" in response.content


@pytest.mark.django_db
def test_no_login_redirect_no_csrf_and_only_get_or_head(
    client: Client, token: str, broker: str
) -> None:
    csrf_checked = Client(enforce_csrf_checks=True)
    bearer = {"Authorization": f"Bearer {TOKEN}"}

    assert client.get("/metrics").status_code == 401  # not a redirect to the login page
    assert csrf_checked.get("/metrics", headers=bearer).status_code == 200
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert client.generic(method, "/metrics", headers=bearer).status_code == 405, method
    # ...and CSRF still guards it: a cross-site POST is refused before the view.
    assert csrf_checked.post("/metrics", headers=bearer).status_code == 403
    head = client.head("/metrics", headers=bearer)
    assert head.status_code == 200
    assert head["Content-Type"].startswith("text/plain")
    assert head.content == b""


@pytest.mark.django_db
def test_content_negotiation(client: Client, token: str, broker: str) -> None:
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    plain = client.get("/metrics", headers=bearer)
    openmetrics = client.get(
        "/metrics",
        headers={**bearer, "Accept": "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"},
    )

    assert plain["Content-Type"].startswith("text/plain; version=0.0.4")
    assert openmetrics["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.content.endswith(b"# EOF\n")
    parsed = openmetrics_families(openmetrics.content.decode())  # type: ignore[no-untyped-call]
    families = {f.name: f for f in parsed}
    assert families["taskdeck_runs"].type == "counter"
    assert families["taskdeck_run_duration_seconds"].unit == "seconds"
    assert families["taskdeck_workers_online"].type == "gauge"
    plain_families = text_string_to_metric_families(plain.content.decode())
    assert {f.name for f in plain_families} >= {
        "taskdeck_runs",
        "taskdeck_runs_active",
        "taskdeck_queue_depth",
        "taskdeck_broker_up",
    }


# --- values


@pytest.mark.django_db
def test_values_from_the_stats_the_ledger_and_the_alerts(
    client: Client, token: str, broker: str
) -> None:
    now = timezone.now()
    an_hour_ago = now - timedelta(hours=1)
    for seconds, state in ((0.3, RunState.SUCCESS), (40, RunState.SUCCESS), (3, RunState.FAILURE)):
        Run.objects.create(
            task_id=f"m-{seconds}", job_name="m.job", state=state, queued_at=an_hour_ago,
            started_at=an_hour_ago + timedelta(seconds=2),
            finished_at=an_hour_ago + timedelta(seconds=2 + seconds),
        )  # fmt: skip
    assert rollup.roll_up(now=now) == 3
    # Not final: active. A queued run on "low" for 2 minutes; one due later is not waiting yet.
    Run.objects.create(task_id="m-run", job_name="m.job", state=RunState.STARTED,
                       queued_at=now, started_at=now)  # fmt: skip
    Run.objects.create(task_id="m-q1", job_name="m.job", state=RunState.PENDING, queue="low",
                       queued_at=now - timedelta(minutes=2))  # fmt: skip
    due_later = now + timedelta(hours=1)
    Run.objects.create(task_id="m-q2", job_name="m.job", state=RunState.PENDING, queue="low",
                       queued_at=now - timedelta(hours=3), eta=due_later)  # fmt: skip
    failing = AlertRule.objects.create(name="failures", kind=AlertRuleKind.RUN_FAILED)
    AlertRule.objects.create(name="quiet", kind=AlertRuleKind.RUN_FAILED)
    Alert.objects.create(rule=failing, key="run:a", summary="a failed")
    Alert.objects.create(rule=failing, key="run:b", summary="b failed")
    Alert.objects.create(rule=failing, key="run:c", summary="c failed", resolved_at=now)

    samples = scrape(client)

    assert value(samples, "taskdeck_runs_total", job_name="m.job", state="SUCCESS") == 2
    assert value(samples, "taskdeck_runs_total", job_name="m.job", state="FAILURE") == 1
    duration = "taskdeck_run_duration_seconds"
    assert value(samples, f"{duration}_count", job_name="m.job") == 3  # every state together
    assert value(samples, f"{duration}_sum", job_name="m.job") == pytest.approx(43.3)
    assert value(samples, f"{duration}_bucket", job_name="m.job", le="0.25") == 0
    assert value(samples, f"{duration}_bucket", job_name="m.job", le="0.5") == 1
    assert value(samples, f"{duration}_bucket", job_name="m.job", le="2.5") == 1
    assert value(samples, f"{duration}_bucket", job_name="m.job", le="5.0") == 2
    assert value(samples, f"{duration}_bucket", job_name="m.job", le="60.0") == 3
    assert value(samples, f"{duration}_bucket", job_name="m.job", le="+Inf") == 3
    wait = "taskdeck_run_queue_wait_seconds"
    assert value(samples, f"{wait}_sum", job_name="m.job") == pytest.approx(6)
    assert value(samples, f"{wait}_bucket", job_name="m.job", le="1.0") == 0
    assert value(samples, f"{wait}_bucket", job_name="m.job", le="2.5") == 3

    assert value(samples, "taskdeck_runs_active", job_name="m.job", state="STARTED") == 1
    assert value(samples, "taskdeck_runs_active", job_name="m.job", state="PENDING") == 2
    low_age = value(samples, "taskdeck_queue_oldest_age_seconds", queue="low")
    assert 120 <= low_age < 3600  # the run due later does not count
    assert value(samples, "taskdeck_queue_oldest_age_seconds", queue="high") == 0
    assert value(samples, "taskdeck_alerts_firing", rule="failures") == 2
    assert value(samples, "taskdeck_alerts_firing", rule="quiet") == 0
    lag = value(samples, "taskdeck_stats_rollup_lag_seconds")
    # The rollup counted up to now - TASKDECK_ROLLUP_LAG_SECONDS.
    assert settings.TASKDECK_ROLLUP_LAG_SECONDS <= lag < settings.TASKDECK_ROLLUP_LAG_SECONDS + 600
    counted_upto = now - timedelta(seconds=settings.TASKDECK_ROLLUP_LAG_SECONDS)
    upto = value(samples, "taskdeck_stats_rollup_upto_timestamp_seconds")
    assert upto == pytest.approx(counted_upto.timestamp())
    assert value(samples, "taskdeck_broker_up") == 1


@pytest.mark.django_db
def test_before_the_first_rollup_and_with_no_runs(client: Client, token: str, broker: str) -> None:
    samples = scrape(client)

    assert math.isinf(value(samples, "taskdeck_stats_rollup_lag_seconds"))
    assert value(samples, "taskdeck_stats_rollup_upto_timestamp_seconds") == 0
    assert value(samples, "taskdeck_alerts_last_evaluation_timestamp_seconds") == 0
    assert not {name for name in names(samples) if name.startswith("taskdeck_runs_total")}
    assert value(samples, "taskdeck_queue_oldest_age_seconds", queue="default") == 0


@pytest.mark.django_db
def test_the_time_of_the_last_alert_evaluation(client: Client, token: str, broker: str) -> None:
    evaluated = timezone.now() - timedelta(seconds=7)
    RollupMark.objects.create(name=EVALUATED_MARK, upto=evaluated)

    samples = scrape(client)

    last = value(samples, "taskdeck_alerts_last_evaluation_timestamp_seconds")
    assert last == pytest.approx(evaluated.timestamp())
    assert math.isinf(value(samples, "taskdeck_stats_rollup_lag_seconds"))  # not the rollup's


@pytest.mark.django_db
def test_beat_up_while_the_leader_lock_is_held(
    client: Client, token: str, broker_url: str, broker: str
) -> None:
    """The lock taken as the beat takes it (redis-py's Lock, in the broker's Redis)."""
    key = settings.TASKDECK_BEAT_LOCK_KEY
    lock = Lock(
        redis.Redis.from_url(presence.redis_url(broker_url)), key, timeout=30, thread_local=False
    )
    assert value(scrape(client), "taskdeck_beat_up") == 0

    assert lock.acquire(blocking=False)
    try:
        samples = scrape(client)
        assert value(samples, "taskdeck_beat_up") == 1
        assert "taskdeck_workers_online" in names(samples)  # read in the same round trip
    finally:
        lock.release()

    assert value(scrape(client), "taskdeck_beat_up") == 0


@pytest.fixture
def broker_down(broker_url: str) -> Iterator[None]:
    """Celery pointed at a port where nothing listens, then back at the test broker."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free once closed: nothing listens there
    use_broker(f"redis://127.0.0.1:{port}/0")
    try:
        yield
    finally:
        use_broker(broker_url)


@pytest.mark.django_db
def test_a_broker_that_is_down_is_reported_not_an_error(
    client: Client, token: str, broker_down: None
) -> None:
    samples = scrape(client)

    assert value(samples, "taskdeck_broker_up") == 0
    assert not {name for name in names(samples) if name.startswith("taskdeck_queue_depth")}
    assert "taskdeck_workers_online" not in names(samples)  # unknown, not 0
    assert value(samples, "taskdeck_beat_up") == 0
    assert value(samples, "taskdeck_queue_oldest_age_seconds", queue="default") == 0


@pytest.fixture
def broker_not_redis(broker_url: str) -> Iterator[None]:
    """Celery pointed at kombu's in-memory transport (a broker with no Redis behind it)."""
    use_broker("memory://")
    try:
        yield
    finally:
        use_broker(broker_url)


@pytest.mark.django_db
def test_a_broker_that_is_not_redis_leaves_the_workers_unknown(
    client: Client, token: str, broker_not_redis: None
) -> None:
    samples = scrape(client)

    assert value(samples, "taskdeck_broker_up") == 1  # it answers for its queues
    assert "taskdeck_workers_online" not in names(samples)  # no presence set: unknown, not 0
    assert value(samples, "taskdeck_beat_up") == 0  # no beat can lead without Redis
    with pytest.raises(presence.UNAVAILABLE):
        presence.online_count()


def test_a_worker_on_a_broker_that_is_not_redis_does_not_announce_itself(
    broker_not_redis: None, caplog: pytest.LogCaptureFixture
) -> None:
    announcing = presence.Presence()
    with caplog.at_level(logging.INFO, logger=presence.__name__):
        announcing.start("not-redis@test")

    assert not [t for t in threading.enumerate() if t.name == "taskdeck-presence"]
    assert "not-redis@test does not announce itself: the broker (memory://) is not Redis" in (
        caplog.text
    )
    announcing.stop()  # no error at shutdown either


# --- with real workers


def test_queue_depth_counts_a_message_held_in_a_queue(
    client: Client, token: str, worker: WorkerProcess
) -> None:
    """The session worker stops taking from "low" for the test, so the message stays there."""
    # limit: the session worker is the only one; without it the call waits the whole timeout.
    replies = celery_app.control.cancel_consumer("low", reply=True, timeout=5, limit=1)
    assert replies, "the worker did not answer cancel_consumer"
    try:
        before = value(scrape(client), "taskdeck_queue_depth", queue="low")
        result = add.apply_async((2, 3), queue="low")

        samples = scrape(client)

        assert value(samples, "taskdeck_queue_depth", queue="low") == before + 1
        assert value(samples, "taskdeck_runs_active", job_name="demo.add", state="PENDING") == 1
        assert value(samples, "taskdeck_queue_oldest_age_seconds", queue="low") < 60
        assert Run.objects.get(task_id=result.id).state == RunState.PENDING
    finally:
        with celery_app.connection_for_write() as conn:
            conn.default_channel.queue_purge("low")  # type: ignore[attr-defined]  # Redis channel
        celery_app.control.add_consumer("low", reply=True, timeout=5, limit=1)


@pytest.mark.processes
def test_workers_online_counts_workers_that_announce_themselves(
    client: Client, token: str, worker: WorkerProcess, broker_url: str, tmp_path: Path
) -> None:
    """The session worker is in the presence set; one more worker is counted once ready and
    no longer once it has shut down."""
    session_worker = worker.hostname.replace("%h", socket.gethostname())
    assert presence.client().zscore(presence.KEY, session_worker) is not None
    # Workers that earlier tests killed stay counted for ONLINE_WINDOW after their last beat
    # and would drop out at some moment during this test, changing the count it compares.
    members = presence.client().zrange(presence.KEY, 0, -1)
    others = [m for m in members if isinstance(m, bytes) and m != session_worker.encode()]
    if others:
        presence.client().zrem(presence.KEY, *others)
    online = value(scrape(client), "taskdeck_workers_online")
    assert online >= 1

    extra = WorkerProcess(
        broker_url, tmp_path / "presence-worker.log", name="presence-test", concurrency=1,
        queues=("presence-test",),  # takes none of the other tests' messages
    )  # fmt: skip
    extra.start()
    try:
        wait_for(lambda: value(scrape(client), "taskdeck_workers_online") == online + 1, 15)
    finally:
        extra.stop()
    assert value(scrape(client), "taskdeck_workers_online") == online  # removed at shutdown
