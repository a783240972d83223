"""Workers & queues read from the real broker: the online worker with its pool and queues,
and each queue's depth."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tasks_app.worker import broker
from tests.support.services import WorkerProcess


def test_the_panel_lists_the_online_worker_and_queue_depths(
    worker: WorkerProcess, client: Client
) -> None:
    client.force_login(User.objects.create_superuser("boss", password="x-Secret-123"))

    snapshot = broker.snapshot(timeout=2.0)
    html = client.get(reverse("tasks_app:workers_panel"), HTTP_HX_REQUEST="true").content.decode()

    names = [w.name for w in snapshot.workers]
    assert names, snapshot
    ours = next(w for w in snapshot.workers if w.name.startswith("test-worker"))
    assert snapshot.broker_up
    assert (ours.pool, ours.concurrency) == ("prefork", 2)
    assert set(ours.queues) == {"high", "default", "low"}
    assert ours.uptime_seconds is not None
    assert [q.name for q in snapshot.queues] == ["high", "default", "low"]
    assert all(q.messages >= 0 for q in snapshot.queues)
    assert names[0] in html
    assert "Waiting messages" in html
