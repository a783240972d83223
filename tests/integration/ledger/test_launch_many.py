"""A batch launch (`services.jobs_launch_many`): one INSERT for the runs, one message each on
the real broker, one audit entry; all or nothing on validation; nothing half-written when the
broker refuses, at the start or part way."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from dashboard.celery import app as celery_app
from tasks_app import services
from tasks_app.models import AuditEntry, Run, RunSource, RunState
from tasks_app.services import LaunchOptions
from tests.support.faults import broker_switched
from tests.support.runs import finished, operator
from tests.support.services import WorkerProcess

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_queues(broker_url: str) -> Iterator[None]:
    """The job queues hold only what each test sends (and nothing it sent stays)."""
    purge_job_queues()
    yield
    purge_job_queues()


def purge_job_queues() -> None:
    with celery_app.connection_for_write() as conn:
        for queue in settings.TASKDECK_QUEUES:
            conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]  # Redis channel


def messages(queue: str) -> list[dict[str, Any]]:
    """The messages waiting in `queue` on the real broker, oldest first (kombu LPUSHes and
    the worker takes from the other end)."""
    with celery_app.connection_for_write() as conn:
        client: Any = conn.default_channel.client  # type: ignore[attr-defined]  # Redis channel
        raw = client.lrange(queue, 0, -1)
    return [json.loads(m) for m in reversed(raw)]


def queued_ids(queue: str = "default") -> list[str]:
    return [str(m["headers"]["id"]) for m in messages(queue)]


def inserts_into(table: str, captured: CaptureQueriesContext) -> int:
    return sum(
        1
        for query in captured.captured_queries
        if query["sql"].lstrip().upper().startswith("INSERT") and f'"{table}"' in query["sql"]
    )


def test_a_batch_is_one_insert_one_message_per_run_and_one_audit_entry(broker: str) -> None:
    items = [{"steps": n} for n in range(1, 21)]

    with CaptureQueriesContext(connection) as captured:
        runs = services.jobs_launch_many(
            "demo.progress", items, actor=operator(), source=RunSource.API
        )

    assert inserts_into(Run._meta.db_table, captured) == 1
    assert inserts_into(AuditEntry._meta.db_table, captured) == 1
    task_ids = [run.task_id for run in runs]
    assert len(set(task_ids)) == 20
    stored = {r.task_id: r for r in Run.objects.all()}
    assert set(stored) == set(task_ids)
    for n, task_id in enumerate(task_ids, start=1):
        run = stored[task_id]
        assert (run.state, run.source, run.actor_label) == (RunState.PENDING, "api", "operator")
        assert run.params == {"steps": n, "step_seconds": 0.1}, run.params
        assert run.queue == "default"
    # Each message is what a single launch sends: the run's task id and its parameters.
    sent = messages("default")
    assert [m["headers"]["id"] for m in sent] == task_ids
    assert [m["headers"]["task"] for m in sent] == ["demo.progress"] * 20
    (entry,) = AuditEntry.objects.all()
    assert entry.action == "runs.launch_batch"
    assert entry.details["count"] == 20
    assert entry.details["task_ids"] == task_ids
    assert entry.details["source"] == "api"


def test_a_thousand_runs_take_one_insert_on_postgresql(broker: str) -> None:
    with CaptureQueriesContext(connection) as captured:
        runs = services.jobs_launch_many("demo.progress", [{}] * 1000, actor=operator())

    inserts = inserts_into(Run._meta.db_table, captured)
    # SQLite takes at most 999 values a statement, so Django splits it there (one transaction).
    assert inserts == 1 if connection.vendor == "postgresql" else inserts <= 40, inserts
    assert Run.objects.filter(state=RunState.PENDING).count() == len(runs) == 1000
    assert len(queued_ids()) == 1000
    assert AuditEntry.objects.filter(action="runs.launch_batch").count() == 1


def test_options_apply_to_every_run(broker: str) -> None:
    runs = services.jobs_launch_many(
        "demo.progress",
        [{"steps": 1}, {"steps": 2}],
        actor=operator(),
        options=LaunchOptions(queue="low", countdown=60),
    )

    assert queued_ids("low") == [run.task_id for run in runs]
    for run in Run.objects.all():
        assert run.queue == "low"
        assert run.eta is not None


def test_an_invalid_item_is_named_and_nothing_is_written_or_queued(broker: str) -> None:
    items: list[dict[str, Any]] = [{"steps": 1}, {"steps": 2}, {"steps": 3}, {"steps": "many"}]
    items += [{"steps": 1, "colour": "red"}]

    with pytest.raises(services.InvalidBatch) as refused:
        services.jobs_launch_many("demo.progress", items, actor=operator())

    assert set(refused.value.errors) == {"items.3.params.steps", "items.4.params"}, (
        refused.value.errors
    )
    assert "items.3.params.steps" in str(refused.value)
    assert not Run.objects.exists()
    assert queued_ids() == []
    assert not AuditEntry.objects.exists()


@pytest.mark.parametrize("count", [0, 4])
def test_an_empty_or_over_long_batch_is_refused(broker: str, count: int) -> None:
    limit = override_settings(TASKDECK_BULK_LIMIT=3)
    with limit, pytest.raises(services.InvalidBatch) as refused:
        services.jobs_launch_many("demo.progress", [{}] * count, actor=operator())

    assert list(refused.value.errors) == ["items"]
    assert not Run.objects.exists()
    assert queued_ids() == []


def test_launching_needs_the_permissions_of_a_single_launch(broker: str) -> None:
    nobody = User.objects.create_user("nobody", is_staff=True)
    launcher = User.objects.create_user("launcher", is_staff=True)
    launcher.user_permissions.add(Permission.objects.get(codename="launch_job"))

    with pytest.raises(services.PermissionDenied, match="launch_job"):
        services.jobs_launch_many("demo.progress", [{}], actor=services.Actor(user=nobody))
    # taskdeck.cleanup asks for its own permission too.
    with pytest.raises(services.PermissionDenied, match="run_cleanup"):
        services.jobs_launch_many("taskdeck.cleanup", [{}], actor=services.Actor(user=launcher))

    assert not Run.objects.exists()
    assert not AuditEntry.objects.exists()
    assert queued_ids() == queued_ids("low") == []


def test_a_unique_job_refuses_items_with_the_same_parameters(broker: str) -> None:
    items = [{"days": 400}, {"days": 401}, {"days": 400}]

    with pytest.raises(services.InvalidBatch) as refused:
        services.jobs_launch_many("taskdeck.cleanup", items, actor=operator())

    assert list(refused.value.errors) == ["items.2.params"]
    assert "items.0" in refused.value.errors["items.2.params"][0]
    assert not Run.objects.exists()


def test_a_unique_job_already_queued_refuses_the_whole_batch(broker: str) -> None:
    actor = operator()
    earlier = services.job_launch("taskdeck.cleanup", {"days": 401}, actor=actor)
    items = [{"days": 400}, {"days": 401}, {"days": 402}]

    with pytest.raises(services.AlreadyActive) as refused:
        services.jobs_launch_many("taskdeck.cleanup", items, actor=actor)
    distinct = services.jobs_launch_many("taskdeck.cleanup", [{"days": 403}], actor=actor)

    assert refused.value.existing is not None
    assert refused.value.existing.task_id == earlier.task_id
    assert {r.task_id for r in Run.objects.all()} == {earlier.task_id, distinct[0].task_id}
    assert queued_ids("low") == [earlier.task_id, distinct[0].task_id]


def test_with_the_broker_down_nothing_is_stored(broker: str) -> None:
    down = broker_switched("redis://127.0.0.1:1/0")  # nothing listens on port 1
    with down, pytest.raises(services.BrokerUnavailable) as refused:
        services.jobs_launch_many("demo.progress", [{}] * 5, actor=operator())

    assert not isinstance(refused.value, services.PartlyQueued)
    assert not Run.objects.exists()
    assert not AuditEntry.objects.exists()


class CuttingProxy:
    """A TCP proxy in front of the test Redis that passes the first `allowed` LPUSH commands
    (kombu's publish) and, at the next one, closes every connection without passing it on and
    stops listening: a broker that fails part way through a batch."""

    def __init__(self, broker_url: str, allowed: int) -> None:
        parts = urlsplit(broker_url)
        if parts.scheme.endswith("socket"):  # the bundled redis-server: a Unix socket
            self.upstream: str | tuple[str, int] = parts.path
            db = parse_qs(parts.query).get("virtual_host", ["0"])[0]
        else:
            self.upstream = (parts.hostname or "127.0.0.1", parts.port or 6379)
            db = parts.path.strip("/") or "0"
        self.allowed = allowed
        self.pushes = 0
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/{db}"
        self.cut = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # cut
            server = self._connect()
            with self.lock:
                self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _connect(self) -> socket.socket:
        if isinstance(self.upstream, str):
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.connect(self.upstream)
            return server
        return socket.create_connection(self.upstream)

    def _pump(self, source: socket.socket, target: socket.socket, counting: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if counting:
                    with self.lock:
                        self.pushes += data.count(b"LPUSH")
                        if self.pushes > self.allowed:
                            self.close()
                            return
                target.sendall(data)

    def close(self) -> None:
        self.cut = True
        self.listener.close()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def test_a_broker_failing_part_way_leaves_only_the_runs_it_queued(broker: str) -> None:
    proxy = CuttingProxy(broker, allowed=7)
    try:
        with broker_switched(proxy.url), pytest.raises(services.PartlyQueued) as refused:
            services.jobs_launch_many(
                "demo.progress", [{"steps": n} for n in range(1, 21)], actor=operator()
            )
    finally:
        with proxy.lock:
            proxy.close()

    assert proxy.cut
    queued = [run.task_id for run in refused.value.queued]
    assert (len(queued), refused.value.unsent) == (7, 13)
    assert "7 of 20" in str(refused.value)
    # Every row left is a queued message, and every queued message has its row.
    assert sorted(Run.objects.values_list("task_id", flat=True)) == sorted(queued)
    assert queued_ids() == queued
    assert [r.params["steps"] for r in refused.value.queued] == list(range(1, 8))
    (entry,) = AuditEntry.objects.all()
    assert (entry.details["count"], entry.details["not_queued"]) == (7, 13)
    assert entry.details["task_ids"] == queued


def test_every_run_of_a_batch_runs_to_success(worker: WorkerProcess) -> None:
    items = [{"steps": n, "step_seconds": 0.0} for n in range(1, 9)]

    runs = services.jobs_launch_many("demo.progress", items, actor=operator())

    for n, run in enumerate(runs, start=1):
        done = finished(run.task_id)
        assert done.state == RunState.SUCCESS, (done.state, done.error)
        assert (done.progress_done, done.progress_total) == (n, n)
