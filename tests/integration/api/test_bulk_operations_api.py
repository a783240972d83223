"""The bulk operations API: `POST /runs/bulk-operations` answers 202 with the operation (the
job does the work; `GET /runs/bulk-operations/{pk}` follows it), refuses bad or unbounded
input with a 400 naming the field, and asks for the typed count above the cap."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client, override_settings
from django.utils import timezone

from tasks_app.models import AuditEntry, BulkOperation, Run, RunState
from tasks_app.tokens import issue_token
from tests.support.ledger import make_run
from tests.support.services import wait_for

pytestmark = pytest.mark.django_db

PATH = "/api/v1/runs/bulk-operations"


class Caller:
    def __init__(self, client: Client, user: User) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {issue_token(user, 'ci')[1]}"}

    def post(self, body: Any) -> Any:
        return self.client.post(
            PATH, json.dumps(body), content_type="application/json", headers=self.headers
        )

    def get(self, path: str) -> Any:
        return self.client.get(path, headers=self.headers)


@pytest.fixture
def boss(client: Client) -> Caller:
    return Caller(client, User.objects.create_superuser("boss", password="x-Secret-123"))


def failed(count: int) -> list[Run]:
    return [
        make_run(
            RunState.FAILURE,
            job_name="demo.flaky",
            finished_at=timezone.now(),
            params={"failure_rate": 0.0},
            queue="bulk-api-void",
        )
        for _ in range(count)
    ]


def test_a_request_is_accepted_and_followed_to_the_end(boss: Caller, worker: object) -> None:
    originals = failed(3)
    response = boss.post({"action": "retry", "filters": {"job": "demo.flaky"}})
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["action"], body["expected"], body["filters"]) == (
        "retry",
        3,
        {"job_name": "demo.flaky"},
    )
    assert body["run"] is not None

    def finished() -> dict[str, Any] | None:
        answer = boss.get(f"{PATH}/{body['id']}").json()
        return answer if answer["state"] == "done" else None

    final = wait_for(finished, 60)
    assert (final["done"], final["skipped"], final["percent"]) == (3, 0, 100)
    assert all(o.retried_by.count() == 1 for o in originals)
    listed = boss.get(PATH).json()["items"]
    assert [item["id"] for item in listed] == [body["id"]]


@override_settings(TASKDECK_BULK_LIMIT=2)
def test_above_the_cap_confirm_count_is_required_and_checked(boss: Caller, broker: str) -> None:
    failed(3)
    for body in ({}, {"confirm_count": 4}):
        response = boss.post({"action": "retry", "filters": {"job": "demo.flaky"}, **body})
        assert response.status_code == 400
        assert "type 3" in response.json()["errors"]["confirm_count"][0]
    assert not BulkOperation.objects.exists()
    response = boss.post({"action": "retry", "filters": {"job": "demo.flaky"}, "confirm_count": 3})
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "delete"}, "action"),
        ({"action": "retry", "filters": {"state": ["FAILURE"] * 9}}, "filters.state"),
        ({"action": "retry", "filters": {"state": ["NOPE"]}}, "filters.state.0"),
        ({"action": "retry", "filters": {"job": "x" * 256}}, "filters.job"),
        ({"action": "retry", "filters": {"q": "a-b"}}, "q"),
        (
            {
                "action": "retry",
                "filters": {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
            },
            "until",
        ),
        ({"action": "retry", "filters": {"colour": "red"}}, "filters.colour"),
        ({"action": "retry", "confirm_count": 10**12}, "confirm_count"),
        ({"action": "retry", "confirm_count": -1}, "confirm_count"),
        ({"action": "retry", "filters": {"job": "no.such.job"}}, "filters"),
    ],
)
def test_bad_or_unbounded_input_is_a_400_naming_the_field(
    boss: Caller, broker: str, body: dict[str, Any], field: str
) -> None:
    failed(1)
    response = boss.post(body)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert not BulkOperation.objects.exists()
    assert not AuditEntry.objects.filter(action="runs.bulk_operation").exists()


def test_the_action_needs_its_permission(client: Client, broker: str) -> None:
    failed(1)
    user = User.objects.create_user("viewer", password="x", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="cancel_run"))
    response = Caller(client, user).post({"action": "retry", "filters": {}})
    assert response.status_code == 403
    assert not BulkOperation.objects.exists()


def test_an_unknown_operation_is_a_404(boss: Caller) -> None:
    assert boss.get(f"{PATH}/999999").status_code == 404
    assert boss.get(f"{PATH}/abc").status_code == 400


def test_a_time_with_a_large_offset_is_stored_in_utc(boss: Caller, broker: str) -> None:
    """Python takes offsets up to 24 h, PostgreSQL up to 15:59: converted, not a 500."""
    failed(1)
    since = "2020-01-01T00:00:00+19:11"
    response = boss.post({"action": "retry", "filters": {"since": since}})
    assert response.status_code == 202, response.content
    assert response.json()["filters"]["since"] == "2019-12-31T04:49:00+00:00"
