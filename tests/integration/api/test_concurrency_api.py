"""GET/PUT /api/v1/jobs/{name}/concurrency: the limit in force and its counts, changed at
runtime with the permission, audited; bad values refused with a 400 naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from tasks_app.models import AuditEntry, JobLimit
from tasks_app.tokens import issue_token
from tests.support.concurrency_slots import slots_taken

URL = "/api/v1/jobs/demo.limited/concurrency"


def call(client: Client, token: str, method: str, url: str = URL, body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    if method == "get":
        return client.get(url, headers=headers)
    return client.put(url, body, content_type="application/json", headers=headers)


@pytest.fixture
def boss(db: None) -> str:
    user = User.objects.create_superuser("boss", password="x-Secret-123")
    return issue_token(user, "ci")[1]


@pytest.fixture
def viewer(db: None) -> str:
    user = User.objects.create_user("viewer", password="x-Secret-123", is_staff=True)
    return issue_token(user, "read")[1]


def test_get_shows_the_code_limit_and_the_counts(client: Client, boss: str) -> None:
    with slots_taken("demo.limited", held=2, waiting=1):
        body = call(client, boss, "get").json()

    assert body["job"] == "demo.limited"
    assert (body["limit"], body["code_limit"], body["source"]) == (2, 2, "code")
    assert (body["running"], body["waiting"]) == (2, 1)
    assert call(client, boss, "get").json()["running"] == 0


def test_put_overrides_lifts_and_resets_the_limit_audited(client: Client, boss: str) -> None:
    body = call(client, boss, "put", body={"concurrency": 5}).json()
    assert (body["limit"], body["source"], body["updated_by"]) == (5, "operator", "boss (token ci)")
    assert JobLimit.objects.get(job_name="demo.limited").concurrency == 5

    body = call(client, boss, "put", body={"concurrency": None}).json()
    assert (body["limit"], body["code_limit"], body["source"]) == (None, 2, "operator")

    body = call(client, boss, "put", body={"use_code_default": True}).json()
    assert (body["limit"], body["source"]) == (2, "code")
    assert not JobLimit.objects.exists()

    changes = AuditEntry.objects.filter(action="job.concurrency").order_by("id")
    assert [(e.details["from"], e.details["to"]) for e in changes] == [(2, 5), (5, None), (None, 2)]
    assert {(e.target_type, e.target_id) for e in changes} == {("job", "demo.limited")}


@pytest.mark.parametrize(
    "sent", [{"concurrency": 0}, {"concurrency": -3}, {"concurrency": 2.5}, {"concurrency": "3"},
             {"concurrency": True}, {}],
)  # fmt: skip
def test_put_refuses_what_is_not_a_positive_whole_number(
    client: Client, boss: str, sent: dict[str, Any]
) -> None:
    response = call(client, boss, "put", body=sent)

    assert response.status_code == 400, response.content
    assert "concurrency" in response.json()["errors"]
    assert not JobLimit.objects.exists()
    assert not AuditEntry.objects.filter(action="job.concurrency").exists()


def test_put_needs_the_permission(client: Client, viewer: str) -> None:
    response = call(client, viewer, "put", body={"concurrency": 1})

    assert response.status_code == 403
    assert not JobLimit.objects.exists()
    user = User.objects.get(username="viewer")
    user.user_permissions.add(Permission.objects.get(codename="manage_job_limits"))
    assert call(client, viewer, "put", body={"concurrency": 1}).json()["limit"] == 1


def test_an_unknown_job_is_a_404(client: Client, boss: str) -> None:
    url = "/api/v1/jobs/no.such.job/concurrency"
    assert call(client, boss, "get", url).status_code == 404
    assert call(client, boss, "put", url, {"concurrency": 1}).status_code == 404
    assert not JobLimit.objects.exists()
