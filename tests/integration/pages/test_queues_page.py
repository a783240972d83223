"""Pausing and resuming a queue from the Workers & queues page: plain forms (no JavaScript
needed), "paused by X since T" in the panel, an unknown name answered inline, the permission,
and the broker being down."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import resolve, reverse

from tasks_app.models import AuditEntry, QueuePause
from tests.support.services import use_broker

pytestmark = pytest.mark.django_db


def panel(client: Client) -> str:
    return str(
        client.get(reverse("tasks_app:workers_panel"), HTTP_HX_REQUEST="true").content.decode()
    )


@pytest.fixture
def boss(client: Client) -> User:
    user = User.objects.create_superuser("boss", password="x-Secret-123")
    client.force_login(user)
    return user


def test_pause_and_resume_from_the_panel(client: Client, boss: User, broker: str) -> None:
    before = panel(client)
    assert 'action="/workers/queues/low/pause/"' in before
    assert "Consuming" in before

    response = client.post(reverse("tasks_app:queue_pause", args=["low"]), follow=True)

    assert response.redirect_chain == [(reverse("tasks_app:workers"), 302)]
    assert "Queue low paused." in response.content.decode()
    after = panel(client)
    assert "Paused</span> by boss since" in after
    assert 'action="/workers/queues/low/resume/"' in after
    assert AuditEntry.objects.filter(action="queue.pause", actor_label="boss").exists()

    again = client.post(reverse("tasks_app:queue_pause", args=["low"]), follow=True)
    assert "Queue low was already paused." in again.content.decode()

    resumed = client.post(reverse("tasks_app:queue_resume", args=["low"]), follow=True)
    assert "Queue low resumed." in resumed.content.decode()
    assert not QueuePause.objects.exists()
    assert 'action="/workers/queues/low/pause/"' in panel(client)


def test_an_unknown_queue_is_an_inline_error(client: Client, boss: User, broker: str) -> None:
    response = client.post(reverse("tasks_app:queue_pause", args=["<b>nope"]))

    assert response.status_code == 404
    html = response.content.decode()
    assert 'id="queue-error"' in html
    assert "No queue named &#x27;&lt;b&gt;nope&#x27;" in html
    assert "<b>nope" not in html
    assert not QueuePause.objects.exists()


def test_without_the_permission_no_buttons_and_posts_are_refused(
    client: Client, broker: str
) -> None:
    viewer = User.objects.create_user("viewer", password="x-Secret-123", is_staff=True)
    client.force_login(viewer)
    QueuePause.objects.create(queue="high", paused_by_label="boss", paused_at="2026-12-01T10:00Z")

    html = panel(client)
    assert "Paused</span> by boss since" in html
    assert "/workers/queues/" not in html
    assert client.post(reverse("tasks_app:queue_resume", args=["high"])).status_code == 403
    assert QueuePause.objects.filter(queue="high").exists()

    viewer.user_permissions.add(Permission.objects.get(codename="manage_queues"))
    client.force_login(User.objects.get(pk=viewer.pk))  # permissions are cached per user object
    assert 'action="/workers/queues/high/resume/"' in panel(client)
    assert client.post(reverse("tasks_app:queue_resume", args=["high"])).status_code == 302
    assert not QueuePause.objects.exists()


def test_with_the_broker_down_the_pause_stands_with_a_warning(
    client: Client, boss: User, broker_url: str
) -> None:
    use_broker("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        response = client.post(reverse("tasks_app:queue_pause", args=["default"]), follow=True)
        html = panel(client)
    finally:
        use_broker(broker_url)

    page = response.content.decode()
    assert "Queue default paused, but the workers could not be told" in page
    assert "msg-warning" in page
    assert QueuePause.objects.filter(queue="default").exists()
    assert "The broker is unreachable" in html
    assert "Paused</span> by boss since" in html  # read from the database


def test_a_queue_name_with_a_slash_has_pause_and_resume_urls() -> None:
    """A worker's -Q takes any name: the panel's links must not fail to build for "a/b"."""
    for name in ("queue_pause", "queue_resume"):
        url = reverse(f"tasks_app:{name}", args=["team/reports"])
        assert resolve(url).kwargs == {"name": "team/reports"}
        assert resolve(url).url_name == name
