"""The JSON API through the test client, with real tokens: auth, each operation, the audit
trail, and bad input answered with 4xx JSON that names the field, with nothing queued."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tasks_app.jobs.registry import get_job
from tasks_app.jobs.sealing import unseal
from tasks_app.models import AuditEntry, Run, RunSource, RunState
from tasks_app.tokens import issue_token

pytestmark = pytest.mark.django_db

API = "/api/v1"


class Api:
    """The test client with a bearer token."""

    def __init__(self, client: Client, token: str) -> None:
        self.client, self.token = client, token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(API + path, params, headers=self._headers())

    def send(self, method: str, path: str, body: Any = None, *, raw: str | None = None) -> Any:
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        call = getattr(self.client, method)
        return call(API + path, data, content_type="application/json", headers=self._headers())

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.send("post", path, body, **kw)


@pytest.fixture
def boss_user() -> User:
    return User.objects.create_superuser("boss", password="x-Secret-123")


@pytest.fixture
def api(client: Client, boss_user: User) -> Api:
    _, raw = issue_token(boss_user, "ci")
    return Api(client, raw)


@pytest.fixture
def viewer_api(client: Client) -> Api:
    user = User.objects.create_user("viewer", password="x-Secret-123", is_staff=True)
    return Api(client, issue_token(user, "read")[1])


def make_run(state: RunState = RunState.FAILURE, n: int = 1, **fields: Any) -> Run:
    defaults: dict[str, Any] = {
        "task_id": f"api-{n:04d}-0000-0000-0000-000000000000",
        "job_name": "demo.flaky",
        "state": state,
        "queued_at": timezone.now(),
        "params": {"failure_rate": 1.0},
    }
    defaults.update(fields)
    return Run.objects.create(**defaults)


# --- auth --------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer nope", "Bearer tdk_00000000_x", "Basic abc"])
def test_no_valid_token_is_401_json(client: Client, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get(f"{API}/jobs", headers=headers)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_session_is_not_enough(client: Client, boss_user: User) -> None:
    client.force_login(boss_user)
    assert client.get(f"{API}/jobs").status_code == 401


def test_the_token_of_a_user_who_is_not_staff_is_403(client: Client) -> None:
    user = User.objects.create_user("outsider", password="x-Secret-123")
    raw = issue_token(user, "x")[1]
    response = client.get(f"{API}/jobs", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 403


def test_openapi_document_and_docs_page(client: Client, api: Api, boss_user: User) -> None:
    assert client.get(f"{API}/openapi.json").status_code == 401
    document = api.get("/openapi.json").json()
    assert document["info"]["title"] == "Taskdeck API"
    assert {"/api/v1/runs", "/api/v1/schedules/{pk}", "/api/v1/stats"} <= set(document["paths"])
    assert client.get(f"{API}/docs").status_code == 302  # to the login page
    client.force_login(boss_user)
    page = client.get(f"{API}/docs")
    assert page.status_code == 200
    assert b"cdn.jsdelivr" not in page.content  # Swagger UI from our static files


# --- jobs and runs ---------------------------------------------------------------------------


def test_jobs_publish_the_same_schema_as_the_launch_form(api: Api) -> None:
    jobs = {job["name"]: job for job in api.get("/jobs").json()}
    assert jobs["demo.progress"]["params_schema"] == get_job("demo.progress").params.json_schema()
    assert jobs["demo.sensitive"]["sensitive"] == ["password"]
    assert jobs["demo.progress"]["can_launch"] is True


def test_launch_queues_a_run_by_the_tokens_owner(api: Api, broker: str) -> None:
    response = api.post(
        "/runs", {"job": "demo.progress", "params": {"steps": 3}, "options": {"queue": "low"}}
    )

    assert response.status_code == 201, response.content
    body = response.json()
    run = Run.objects.get(task_id=body["task_id"])
    assert run.source == RunSource.API
    assert run.queue == "low"
    assert body["params"] == {"steps": 3, "step_seconds": 0.1}
    assert body["state"] == "PENDING"
    entry = AuditEntry.objects.get(action="run.launch", target_id=run.task_id)
    assert entry.actor_user_id is not None
    assert "boss" in entry.actor_label
    assert "ci" in entry.actor_label


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"job": "demo.progress", "params": {"steps": 0}}, 400, "params.steps"),
        ({"job": "demo.progress", "params": {"steps": "many"}}, 400, "params.steps"),
        ({"job": "demo.progress", "params": {"bogus": 1}}, 400, "params"),
        ({"job": "demo.progress", "params": []}, 400, "params"),
        ({"job": "no.such.job"}, 400, "job"),
        ({"job": "demo.progress", "surprise": True}, 400, "surprise"),
        ({"params": {}}, 400, "job"),
        ({"job": 7}, 400, "job"),
        ({"job": "demo.progress", "options": {"queue": "nowhere"}}, 400, "options.queue"),
        ({"job": "demo.progress", "options": {"priority": 99}}, 400, "options.priority"),
        ({"job": "demo.progress", "options": {"eta": "2031-01-01T00:00:00"}}, 400, "options.eta"),
    ],
)
def test_bad_launches_name_the_field_and_queue_nothing(
    api: Api, body: dict[str, Any], status: int, field: str
) -> None:
    response = api.post("/runs", body)
    assert response.status_code == status, response.content
    errors = response.json()["errors"]
    assert any(name == field or name.startswith(field + ".") for name in errors), errors
    assert not Run.objects.exists()


@pytest.mark.parametrize("raw", ["{", "[]", '"job"', "null", "{'job': 1}"])
def test_malformed_json_is_400(api: Api, raw: str) -> None:
    response = api.post("/runs", raw=raw)
    assert response.status_code == 400, response.content
    assert not Run.objects.exists()


def test_oversized_bodies_are_413_before_parsing(api: Api) -> None:
    big = json.dumps({"job": "demo.progress", "params": {"x": "y" * 70_000}})
    response = api.post("/runs", raw=big)
    assert response.status_code == 413
    assert not Run.objects.exists()


def test_a_viewer_may_read_but_not_launch(viewer_api: Api, broker: str) -> None:
    assert viewer_api.get("/runs").status_code == 200
    response = viewer_api.post("/runs", {"job": "demo.progress"})
    assert response.status_code == 403
    assert not Run.objects.exists()


def test_history_filters_and_cursor_pages(api: Api) -> None:
    for n in range(5):
        make_run(n=n, state=RunState.FAILURE if n % 2 else RunState.SUCCESS)

    first = api.get("/runs", limit=2).json()
    second = api.get("/runs", limit=2, cursor=first["next_cursor"]).json()
    failed = api.get("/runs", state="FAILURE").json()

    assert len(first["items"]) == 2
    assert {r["task_id"] for r in first["items"]}.isdisjoint(r["task_id"] for r in second["items"])
    assert {r["state"] for r in failed["items"]} == {"FAILURE"}
    assert len(failed["items"]) == 2
    assert api.get("/runs", cursor="garbage").status_code == 400
    assert api.get("/runs", limit=0).status_code == 400
    assert api.get("/runs", state="NOPE").status_code == 400


def test_one_run_with_result_progress_and_lineage(api: Api) -> None:
    original = make_run()
    retry = make_run(n=2, state=RunState.SUCCESS, retry_of=original, root=original)

    body = api.get(f"/runs/{retry.task_id}").json()
    assert body["retry_of"] == original.task_id
    assert body["progress"]["percent"] == 100
    assert api.get(f"/runs/{original.task_id}").json()["retried_by"] == [retry.task_id]
    assert api.get("/runs/no-such-run").status_code == 404


def test_cancel_retry_and_bulk_retry(api: Api, broker: str) -> None:
    queued = api.post("/runs", {"job": "demo.progress"}).json()
    cancelled = api.post(f"/runs/{queued['task_id']}/cancel", {"terminate": False}).json()
    assert cancelled["run"]["state"] == "REVOKED"

    retried = api.post(f"/runs/{queued['task_id']}/retry")
    assert retried.status_code == 201
    assert retried.json()["retry_of"] == queued["task_id"]
    assert api.post(f"/runs/{retried.json()['task_id']}/retry").status_code == 409  # queued

    failed = [make_run(n=10 + n) for n in range(2)]
    bulk = api.post("/runs/retry", {"task_ids": [r.task_id for r in failed]}).json()
    assert len(bulk["retried"]) == 2
    by_filter = api.post("/runs/retry", {"filter": {"job": "demo.flaky"}}).json()
    assert len(by_filter["retried"]) == 2  # the originals again (retries are queued, not failed)
    assert api.post("/runs/retry", {}).status_code == 400
    assert api.post("/runs/nope/cancel", {}).status_code == 404


# --- schedules and stats ---------------------------------------------------------------------


def test_schedules_create_read_change_run_delete(api: Api, broker: str) -> None:
    created = api.post(
        "/schedules",
        {
            "name": "nightly",
            "job": "demo.sensitive",
            "params": {"password": "hunter2-x"},
            "timing": {"kind": "crontab", "cron": "30 2 * * 1-5", "timezone": "Europe/Berlin"},
        },
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["params"]["password"] != "hunter2-x"  # masked
    assert body["timing"]["words"].startswith("At 02:30, Monday through Friday")
    assert len(body["next_fire_times"]) == 5
    pk = body["id"]

    # Sending back what GET shows keeps the secret.
    changed = api.send("patch", f"/schedules/{pk}", {"params": body["params"], "enabled": False})
    assert changed.status_code == 200, changed.content
    task = PeriodicTask.objects.get(pk=pk)
    assert "hunter2-x" not in task.kwargs  # sealed at rest
    assert unseal(json.loads(task.kwargs)["password"]) == "hunter2-x"
    assert task.enabled is False
    assert "hunter2-x" not in json.dumps(api.get(f"/schedules/{pk}").json())

    run = api.post(f"/schedules/{pk}/run")
    assert run.status_code == 201
    assert run.json()["source"] == "schedule"
    assert run.json()["schedule"] == "nightly"

    assert any(s["name"] == "nightly" for s in api.get("/schedules").json())
    assert api.send("delete", f"/schedules/{pk}").status_code == 204
    assert api.get(f"/schedules/{pk}").status_code == 404
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"schedule.create", "schedule.edit", "schedule.run_now", "schedule.delete"} <= actions


@pytest.mark.parametrize(
    ("timing", "field"),
    [
        ({"kind": "crontab", "cron": "0 0 31 2 *"}, "timing.cron"),
        ({"kind": "crontab", "cron": "* * * * *", "timezone": "Mars/Base"}, "timing.timezone"),
        ({"kind": "interval", "every": 0}, "timing.every"),
        ({"kind": "fortnightly"}, "timing.kind"),
        ({"kind": "one_off", "run_at": "2020-01-01T00:00:00Z"}, "timing.run_at"),
    ],
)
def test_bad_schedules_name_the_field(api: Api, timing: dict[str, Any], field: str) -> None:
    response = api.post("/schedules", {"name": "x", "job": "demo.progress", "timing": timing})
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not PeriodicTask.objects.filter(name="x").exists()


def test_declared_schedules_cannot_be_deleted(api: Api) -> None:
    builtin = PeriodicTask.objects.get(name="Taskdeck: reap lost runs")
    assert api.send("delete", f"/schedules/{builtin.pk}").status_code == 409


def test_stats(api: Api, broker: str) -> None:
    make_run()
    body = api.get("/stats").json()
    assert body["runs_last_24h"] == {"FAILURE": 1}
    assert body["broker_up"] is True
    assert {q["name"] for q in body["queues"]} == {"high", "default", "low"}
