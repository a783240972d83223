"""The bulk operation pages: the runs list's offer, the confirmation (typed above the cap,
an inline error when it does not match), the operation's progress page and its htmx partial,
and resuming an interrupted operation."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from tasks_app.models import BulkOperation, BulkState, Run, RunState
from tasks_app.selectors import RunFilter
from tasks_app.services import Actor
from tasks_app.services import bulk_operations as bulk
from tasks_app.tokens import issue_token
from tests.support.ledger import make_run

pytestmark = pytest.mark.django_db

NEW = reverse("tasks_app:bulk_operation_new")


@pytest.fixture
def boss(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("boss", password="x-Secret-123"))
    return client


def failed(count: int, **fields: Any) -> list[Run]:
    return [
        make_run(RunState.FAILURE, finished_at=timezone.now(), params={"failure_rate": 0.0},
                 queue="bulk-pages-void", **fields)
        for _ in range(count)
    ]  # fmt: skip


def test_the_runs_list_offers_to_act_on_all_matching(boss: Client) -> None:
    failed(3)
    make_run(RunState.PENDING, queue="bulk-pages-void")
    page = boss.get(reverse("tasks_app:runs"), {"job": "demo.flaky"}).content.decode()
    assert reverse("tasks_app:bulk_operation_offer") in page
    offer = boss.get(reverse("tasks_app:bulk_operation_offer"), {"job": "demo.flaky"})
    text = offer.content.decode()
    assert "Retry all 3 matching" in text
    assert "Cancel all 1 matching" in text
    # Unfiltered, the list offers nothing of the kind.
    assert (
        reverse("tasks_app:bulk_operation_offer")
        not in boss.get(reverse("tasks_app:runs")).content.decode()
    )


@override_settings(TASKDECK_BULK_LIMIT=2)
def test_a_large_set_needs_the_count_typed(boss: Client, broker: str) -> None:
    failed(3)
    url = f"{NEW}?action=retry&job=demo.flaky"
    page = boss.get(url).content.decode()
    assert "type <strong>3</strong> to confirm" in page
    assert 'name="confirm_count"' in page

    wrong = boss.post(url, {"confirm_count": "30"})
    assert wrong.status_code == 400
    assert "3 runs match now, not 30: type 3." in wrong.content.decode()
    missing = boss.post(url, {"confirm_count": ""})
    assert missing.status_code == 400
    assert "type 3 to confirm" in missing.content.decode()
    garbage = boss.post(url, {"confirm_count": "9" * 40})
    assert garbage.status_code == 400
    assert not BulkOperation.objects.exists()

    right = boss.post(url, {"confirm_count": "3"})
    operation = BulkOperation.objects.get()
    assert right.status_code == 302
    assert right["Location"] == reverse("tasks_app:bulk_operation", args=[operation.pk])
    assert (operation.expected, operation.filters) == (3, {"job_name": "demo.flaky"})


def test_an_invalid_filter_is_refused_not_dropped(boss: Client, broker: str) -> None:
    failed(2)
    response = boss.post(f"{NEW}?action=retry&job=demo.flaky&since=yesterday", {})
    assert response.status_code == 400
    assert "since" in response.content.decode()
    assert not BulkOperation.objects.exists()


def test_the_page_refuses_a_user_without_the_permission(client: Client, broker: str) -> None:
    failed(1)
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="retry_run"))
    client.force_login(user)
    assert client.get(f"{NEW}?action=cancel").status_code == 403
    assert client.post(f"{NEW}?action=cancel", {"confirm_count": "1"}).status_code == 403
    assert client.get(f"{NEW}?action=retry").status_code == 200


def test_the_progress_page_polls_until_done_and_offers_resume(boss: Client, broker: str) -> None:
    failed(2)
    operation = bulk.bulk_operation_request(
        actor=Actor(user=User.objects.get(username="boss")), action="retry",
        filters=RunFilter(job_name="demo.flaky"), confirm_count=2, start=False,
    )  # fmt: skip
    url = reverse("tasks_app:bulk_operation", args=[operation.pk])
    page = boss.get(url).content.decode()
    assert "Interrupted" in page
    assert "Resume" in page
    assert "data-poll" not in page  # no job: nothing to poll for

    resumed = boss.post(reverse("tasks_app:bulk_operation_resume", args=[operation.pk]))
    assert resumed.status_code == 302
    operation.refresh_from_db()
    assert operation.run is not None
    partial = boss.get(url, headers={"HX-Request": "true", "HX-Target": "progress"})
    text = partial.content.decode()
    assert text.lstrip().startswith('<section id="progress"')
    assert "data-poll" in text  # its job is queued: the page follows it

    BulkOperation.objects.filter(pk=operation.pk).update(state=BulkState.DONE, done=2)
    done = boss.get(url, headers={"HX-Request": "true", "HX-Target": "progress"}).content
    assert b"data-poll" not in done
    assert b"100%" in done
    again = boss.post(reverse("tasks_app:bulk_operation_resume", args=[operation.pk]))
    assert again.status_code == 302  # not interrupted: refused with a message, nothing started


def test_an_operation_is_shown_only_to_those_who_may_take_its_action(
    client: Client, broker: str
) -> None:
    """Its filter and count were worked out with the requester's permissions (restricted jobs
    included): someone who could not have asked the same does not see them, on the page or in
    the API."""
    failed(2)
    boss = User.objects.create_superuser("boss", password="x-Secret-123")
    operation = bulk.bulk_operation_request(
        actor=Actor(user=boss), action="retry", filters=RunFilter(job_name="demo.flaky"),
        confirm_count=2, start=False,
    )  # fmt: skip
    viewer = User.objects.create_user("viewer", password="x-Secret-123", is_staff=True)
    client.force_login(viewer)
    url = reverse("tasks_app:bulk_operation", args=[operation.pk])
    api = f"/api/v1/runs/bulk-operations/{operation.pk}"

    token = {"Authorization": f"Bearer {issue_token(viewer, 'ci')[1]}"}

    assert client.get(url).status_code == 404
    assert client.get(api, headers=token).status_code == 404
    assert client.get("/api/v1/runs/bulk-operations", headers=token).json()["items"] == []

    viewer.user_permissions.add(Permission.objects.get(codename="retry_run"))
    viewer = User.objects.get(pk=viewer.pk)  # permissions are cached on the instance
    client.force_login(viewer)
    assert client.get(url).status_code == 200
    assert client.get(api, headers=token).json()["id"] == operation.pk
