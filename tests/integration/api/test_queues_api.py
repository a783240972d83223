"""The queues API on the real broker: list with depth and pause, pause, resume; who may; an
unknown name is a 404; with the broker down the change stands (202) and says so."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from tasks_app.models import AuditEntry, QueuePause
from tasks_app.tokens import issue_token
from tests.support.services import use_broker

pytestmark = pytest.mark.django_db

API = "/api/v1"


def call(client: Client, raw: str, method: str, path: str) -> Any:
    headers = {"Authorization": f"Bearer {raw}"}
    if method == "get":
        return client.get(API + path, headers=headers)
    return client.post(API + path, "", content_type="application/json", headers=headers)


@pytest.fixture
def boss(client: Client) -> str:
    return issue_token(User.objects.create_superuser("boss", password="x-Secret-123"), "ci")[1]


def staff_token(username: str, *perms: str) -> str:
    user = User.objects.create_user(username, password="x-Secret-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=perms))
    return issue_token(user, "t")[1]


def test_queues_are_listed_with_their_depth_and_pause(
    client: Client, boss: str, broker: str
) -> None:
    listed = call(client, boss, "get", "/queues").json()

    assert listed["broker_up"] is True
    assert [q["name"] for q in listed["queues"]] == ["high", "default", "low"]
    assert all(q["paused"] is False and q["paused_by"] is None for q in listed["queues"])
    assert all(isinstance(q["depth"], int) for q in listed["queues"])

    call(client, boss, "post", "/queues/low/pause")
    low = call(client, boss, "get", "/queues").json()["queues"][2]

    assert (low["name"], low["paused"], low["paused_by"]) == ("low", True, "boss (token ci)")
    assert low["paused_at"]


def test_pause_then_resume_is_stored_and_audited_once_each(
    client: Client, boss: str, broker: str
) -> None:
    paused = call(client, boss, "post", "/queues/default/pause")
    again = call(client, boss, "post", "/queues/default/pause")

    assert paused.status_code == again.status_code == 200
    body = paused.json()
    assert (body["name"], body["paused"], body["changed"]) == ("default", True, True)
    assert body["paused_by"] == "boss (token ci)"
    assert body["workers_told"] == []  # no worker online
    assert again.json()["changed"] is False
    assert again.json()["paused_at"] == body["paused_at"]  # the first pause is kept
    assert list(QueuePause.objects.values_list("queue", flat=True)) == ["default"]

    resumed = call(client, boss, "post", "/queues/default/resume")
    twice = call(client, boss, "post", "/queues/default/resume")

    assert resumed.status_code == twice.status_code == 200
    assert (resumed.json()["paused"], resumed.json()["changed"]) == (False, True)
    assert resumed.json()["paused_by"] is None
    assert twice.json()["changed"] is False
    assert not QueuePause.objects.exists()
    audit = AuditEntry.objects.filter(target_type="queue").order_by("pk")
    assert [(a.action, a.target_id, a.actor_label) for a in audit] == [
        ("queue.pause", "default", "boss (token ci)"),
        ("queue.resume", "default", "boss (token ci)"),
    ]


@pytest.mark.parametrize("name", ["nope", "x" * 101, "<script>x"])
def test_an_unknown_queue_is_a_404_and_changes_nothing(
    client: Client, boss: str, broker: str, name: str
) -> None:
    for action in ("pause", "resume"):
        response = call(client, boss, "post", f"/queues/{name}/{action}")

        assert response.status_code == 404, response.content
        assert "not configured and no online worker consumes it" in response.json()["detail"]
    assert not QueuePause.objects.exists()
    assert not AuditEntry.objects.filter(target_type="queue").exists()


def test_only_holders_of_manage_queues_may_pause_or_resume(client: Client, broker: str) -> None:
    viewer = staff_token("viewer")
    operator = staff_token("operator", "manage_queues")

    assert call(client, viewer, "get", "/queues").status_code == 200
    refused = call(client, viewer, "post", "/queues/low/pause")
    assert refused.status_code == 403
    assert "tasks_app.manage_queues" in refused.json()["detail"]
    assert not QueuePause.objects.exists()

    assert call(client, operator, "post", "/queues/low/pause").status_code == 200
    assert call(client, viewer, "post", "/queues/low/resume").status_code == 403
    assert QueuePause.objects.get().paused_by_label == "operator (token t)"
    assert call(client, operator, "post", "/queues/low/resume").status_code == 200
    assert not QueuePause.objects.exists()


def test_with_the_broker_down_the_pause_stands_and_the_answer_says_so(
    client: Client, boss: str, broker_url: str
) -> None:
    use_broker("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        paused = call(client, boss, "post", "/queues/high/pause")
        listed = call(client, boss, "get", "/queues").json()
    finally:
        use_broker(broker_url)

    assert paused.status_code == 202, paused.content
    body = paused.json()
    assert (body["paused"], body["changed"], body["workers_told"]) == (True, True, None)
    assert "the workers were not told" in body["detail"]
    assert "broker is unreachable" in body["detail"]
    assert QueuePause.objects.filter(queue="high").exists()
    assert AuditEntry.objects.filter(action="queue.pause", target_id="high").exists()
    # The list still shows the pause (from the database); depths are unknown.
    assert listed["broker_up"] is False
    high = listed["queues"][0]
    assert (high["name"], high["paused"], high["depth"], high["consumers"]) == (
        "high",
        True,
        None,
        None,
    )
