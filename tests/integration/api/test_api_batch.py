"""`POST /api/v1/runs/batch`: many runs of one job in one request, through the test client with
a real token and the real broker. All or nothing: a refusal (400 naming the item's field, 403,
409, 503) leaves no run, no message and no audit entry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.test import Client

from dashboard.celery import app as celery_app
from tasks_app import services
from tasks_app.models import AuditEntry, Run, RunState
from tasks_app.tokens import issue_token
from tests.support.faults import broker_switched

pytestmark = pytest.mark.django_db

BATCH = "/api/v1/runs/batch"


@pytest.fixture(autouse=True)
def empty_queues(broker: str) -> Iterator[None]:
    """The job queues hold only what each test sends (and nothing it sent stays)."""
    purge_job_queues()
    yield
    purge_job_queues()


def purge_job_queues() -> None:
    with celery_app.connection_for_write() as conn:
        for queue in settings.TASKDECK_QUEUES:
            conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]  # Redis channel


def waiting(queue: str = "default") -> list[str]:
    """Task ids of the messages waiting in `queue` on the real broker, oldest first."""
    with celery_app.connection_for_write() as conn:
        client: Any = conn.default_channel.client  # type: ignore[attr-defined]  # Redis channel
        raw = client.lrange(queue, 0, -1)
    return [json.loads(m)["headers"]["id"] for m in reversed(raw)]


class Caller:
    def __init__(self, client: Client, user: User) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {issue_token(user, 'ci')[1]}"}

    def post(self, body: Any, path: str = BATCH) -> Any:
        return self.client.post(
            path, json.dumps(body), content_type="application/json", headers=self.headers
        )


@pytest.fixture
def boss(client: Client) -> Caller:
    return Caller(client, User.objects.create_superuser("boss", password="x-Secret-123"))


def nothing_happened() -> bool:
    return not Run.objects.exists() and not AuditEntry.objects.exists() and waiting() == []


def test_a_batch_is_queued_and_answered_in_order(boss: Caller) -> None:
    items = [{"params": {"steps": n}} for n in (3, 1, 2)]

    response = boss.post({"job": "demo.progress", "items": items, "options": {"queue": "low"}})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["count"] == 3
    task_ids = [run["task_id"] for run in body["runs"]]
    for run in body["runs"]:
        assert (run["state"], run["source"], run["job"]) == ("PENDING", "api", "demo.progress")
        assert (run["launched_by"], run["queue"]) == ("boss (token ci)", "low")
    assert waiting("low") == task_ids
    stored = {r.task_id: r.params["steps"] for r in Run.objects.all()}
    assert [stored[t] for t in task_ids] == [3, 1, 2]
    (entry,) = AuditEntry.objects.all()
    assert (entry.action, entry.details["count"], entry.details["source"]) == (
        "runs.launch_batch", 3, "api",
    )  # fmt: skip
    assert entry.actor_label == "boss (token ci)"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"job": "demo.progress", "items": [{}, {"params": {"steps": 0}}]}, "items.1.params.steps"),
        ({"job": "demo.progress", "items": [{"params": {"nope": 1}}]}, "items.0.params"),
        ({"job": "demo.progress", "items": [{"params": {}, "x": 1}]}, "items.0.x"),
        ({"job": "demo.progress", "items": []}, "items"),
        ({"job": "demo.progress", "items": {"params": {}}}, "items"),
        ({"job": "demo.progress"}, "items"),
        ({"job": "no.such", "items": [{}]}, "job"),
        (
            {"job": "demo.progress", "items": [{}], "options": {"countdown": -1}},
            "options.countdown",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_nothing_is_queued(
    boss: Caller, body: dict[str, Any], field: str
) -> None:
    response = boss.post(body)

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert nothing_happened()


def test_every_invalid_item_is_named(boss: Caller) -> None:
    items = [{"params": {"steps": n}} for n in (1, 0, 2, -5, "x")]

    response = boss.post({"job": "demo.progress", "items": items})

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"items.1.params.steps", "items.3.params.steps", "items.4.params.steps"}
    assert nothing_happened()


def test_more_items_than_the_limit_is_a_400(boss: Caller) -> None:
    items: list[dict[str, Any]] = [{}] * (settings.TASKDECK_BULK_LIMIT + 1)

    response = boss.post({"job": "demo.progress", "items": items})

    assert response.status_code == 400
    assert str(settings.TASKDECK_BULK_LIMIT) in response.json()["errors"]["items"][0]
    assert nothing_happened()


def test_a_sealed_value_copied_from_storage_is_refused(boss: Caller) -> None:
    earlier = services.job_launch(
        "demo.sensitive", {"password": "hunter2-x"}, actor=services.Actor(system="test")
    )
    sealed = earlier.params["password"]
    items = [{"params": {"password": "fine"}}, {"params": {"password": sealed}}]

    response = boss.post({"job": "demo.sensitive", "items": items})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["items.1.params.password"]
    assert list(Run.objects.all()) == [earlier]


def test_without_the_permission_to_launch_it_is_a_403(client: Client) -> None:
    viewer = Caller(client, User.objects.create_user("viewer", is_staff=True))
    launcher_user = User.objects.create_user("launcher", is_staff=True)
    launcher_user.user_permissions.add(Permission.objects.get(codename="launch_job"))
    launcher = Caller(client, launcher_user)

    refused = viewer.post({"job": "demo.progress", "items": [{}]})
    # taskdeck.cleanup asks for a permission of its own as well.
    refused_job = launcher.post({"job": "taskdeck.cleanup", "items": [{}]})

    assert (refused.status_code, refused_job.status_code) == (403, 403)
    assert "run_cleanup" in refused_job.json()["detail"]
    assert nothing_happened()


def test_a_unique_job_already_queued_is_a_409(boss: Caller) -> None:
    earlier = services.job_launch(
        "taskdeck.cleanup", {"days": 400}, actor=services.Actor(system="test")
    )

    response = boss.post(
        {"job": "taskdeck.cleanup", "items": [{"params": {"days": d}} for d in (399, 400)]}
    )

    assert response.status_code == 409, response.content
    assert earlier.task_id in response.json()["detail"]
    assert list(Run.objects.all()) == [earlier]


def test_with_the_broker_down_it_is_a_503_and_nothing_is_stored(boss: Caller) -> None:
    with broker_switched("redis://127.0.0.1:1/0"):  # nothing listens on port 1
        response = boss.post({"job": "demo.progress", "items": [{}, {}]})

    assert response.status_code == 503, response.content
    body = response.json()
    assert body["queued"] == []
    assert "nothing was queued" in body["detail"]
    assert "127.0.0.1:1" not in response.content.decode()  # the broker's address stays inside
    assert nothing_happened()


def test_the_document_describes_it_and_get_on_its_path_is_a_run_lookup(boss: Caller) -> None:
    document = boss.client.get("/api/v1/openapi.json", headers=boss.headers).json()
    operation = document["paths"][BATCH]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]

    assert schema["required"] == ["job", "items"]
    assert schema["properties"]["items"]["maxItems"] == settings.TASKDECK_BULK_LIMIT
    assert schema["additionalProperties"] is False
    assert {"201", "400", "403", "409", "503"} <= set(operation["responses"])
    # GET on the path is `GET /runs/{task_id}` for the task id "batch": no such run.
    lookup = boss.client.get(BATCH, headers=boss.headers)
    assert lookup.status_code == 404
    assert lookup.json()["detail"] == "No run batch."
    assert Run.objects.filter(state=RunState.PENDING).count() == 0
