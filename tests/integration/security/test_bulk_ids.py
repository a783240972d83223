"""Ids out of the database's range in bulk posts (and id URLs) are refused as user input, never a
500: Python's int has no bound, but SQLite raises OverflowError for a too-large `pk__in` value
and PostgreSQL refuses the query. Each bulk page answers with its inline error; nothing changes.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tasks_app.models import Run
from tasks_app.tokens import issue_token

pytestmark = pytest.mark.django_db

TOO_LARGE = "99999999999999999999"  # over 2**63 - 1
BAD_IDS = [TOO_LARGE, str(2**63), "-1", "0"]
# One past the schedules' key column on this database (PostgreSQL: int4, so 2**31; SQLite: 2**63).
PAST_SCHEDULE_KEYS = str(connection.ops.integer_field_range("AutoField")[1] + 1)


def _messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def schedule() -> PeriodicTask:
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    return PeriodicTask.objects.create(
        name="nightly", task="taskdeck.ping", interval=every, enabled=True
    )


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("action", ["retry", "cancel"])
def test_runs_bulk_refuses_ids_out_of_range(admin_client: Client, bad: str, action: str) -> None:
    response = admin_client.post("/runs/bulk/", {"action": action, "run": [bad]})

    assert response.status_code == 302
    assert _messages(response) == ["Select at least one run."]
    assert not Run.objects.exists()


@pytest.mark.parametrize("bad", [*BAD_IDS, PAST_SCHEDULE_KEYS])
@pytest.mark.parametrize("action", ["enable", "disable"])
def test_schedules_bulk_refuses_ids_out_of_range(
    admin_client: Client, schedule: PeriodicTask, bad: str, action: str
) -> None:
    response = admin_client.post(
        "/schedules/bulk/", {"action": action, "schedule": [str(schedule.pk), bad]}
    )

    assert response.status_code == 302
    assert _messages(response) == ["Select at least one schedule."]
    schedule.refresh_from_db()
    assert schedule.enabled  # the whole post is refused, the valid id with it


def test_in_range_ids_still_work(admin_client: Client, schedule: PeriodicTask) -> None:
    response = admin_client.post(
        "/schedules/bulk/", {"action": "disable", "schedule": [str(schedule.pk)]}
    )

    assert _messages(response) == ["Paused 1 schedule(s)."]
    schedule.refresh_from_db()
    assert not schedule.enabled


@pytest.mark.parametrize("bad", [TOO_LARGE, str(2**63), PAST_SCHEDULE_KEYS])
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/schedules/{}/"),
        ("get", "/schedules/{}/edit/"),
        ("post", "/schedules/{}/toggle/"),
        ("post", "/schedules/{}/run/"),
        ("post", "/schedules/{}/delete/"),
        ("post", "/schedules/{}/reset/"),
        ("post", "/tokens/{}/revoke/"),
    ],
)
def test_id_pages_answer_404_for_ids_out_of_range(
    admin_client: Client, method: str, path: str, bad: str
) -> None:
    response = getattr(admin_client, method)(path.format(bad))

    assert response.status_code == 404


@pytest.fixture
def api(admin_user: User) -> Client:
    """The API takes tokens only."""
    return Client(headers={"Authorization": f"Bearer {issue_token(admin_user, 't')[1]}"})


@pytest.mark.parametrize("bad", [*BAD_IDS, PAST_SCHEDULE_KEYS])
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "schedules/{}", None),
        ("patch", "schedules/{}", {"enabled": False}),
        ("delete", "schedules/{}", None),
        ("post", "schedules/{}/run", None),
    ],
)
def test_api_schedule_ids_out_of_range_are_client_errors(
    api: Client, method: str, path: str, body: dict[str, Any] | None, bad: str
) -> None:
    kwargs: dict[str, Any] = {"content_type": "application/json"}
    if body is not None:
        kwargs["data"] = body
    response = getattr(api, method)("/api/v1/" + path.format(bad), **kwargs)

    assert response.status_code in {400, 404, 422}
    assert response.json()["detail"]


@pytest.mark.parametrize("bad", [TOO_LARGE, "-1"])
def test_api_bulk_retry_reports_odd_ids_as_skipped(api: Client, bad: str) -> None:
    """The API's bulk retry takes task ids (text), not integers: odd ones are skipped."""
    response = api.post("/api/v1/runs/retry", {"task_ids": [bad]}, content_type="application/json")

    assert response.status_code == 200
    assert response.json()["retried"] == []
    assert [s["task_id"] for s in response.json()["skipped"]] == [bad]
