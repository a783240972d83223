"""The JSON API through the test client, with real tokens: auth, each operation, the audit
trail, and bad input answered with 4xx JSON that names the field, with nothing queued."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from celery import current_app
from django import forms
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from tasks_app import services
from tasks_app.jobs import registry
from tasks_app.jobs.context import JobContext
from tasks_app.jobs.registry import all_jobs, job
from tasks_app.jobs.sealing import unseal
from tasks_app.models import AlertChannel, AlertRule, AuditEntry, Run, RunSource, RunState
from tasks_app.services import Actor
from tasks_app.tokens import issue_token
from tests.support import ledger
from tests.support.services import WorkerProcess, wait_for

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
    fields.setdefault("params", {"failure_rate": 1.0})
    return ledger.make_run(state, task_id=f"api-{n:04d}-0000-0000-0000-000000000000", **fields)


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


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
def test_a_non_staff_users_token_is_refused_in_json_by_the_document_and_docs(
    client: Client, path: str
) -> None:
    user = User.objects.create_user("outsider", password="x-Secret-123")
    raw = issue_token(user, "x")[1]

    response = client.get(API + path, headers={"Authorization": f"Bearer {raw}"})

    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"] == "This token's user is not staff."


def test_a_signed_in_non_staff_user_gets_json_403_on_the_document(client: Client) -> None:
    client.force_login(User.objects.create_user("visitor", password="x-Secret-123"))

    response = client.get(f"{API}/openapi.json")

    assert response.status_code == 403
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("length", ["abc", "\u00b2", "\u0663", "-1", "1e3", "12 "])
def test_a_content_length_that_is_not_a_number_is_400(api: Api, length: str) -> None:
    response = api.client.post(
        f"{API}/runs", "{}", content_type="application/json", headers=api._headers(),
        CONTENT_LENGTH=length,
    )  # fmt: skip
    assert response.status_code == 400, response.content
    assert "Content-Length" in response.json()["errors"]
    assert not Run.objects.exists()


def test_a_content_length_too_long_to_read_as_a_number_is_413(api: Api) -> None:
    response = api.client.post(
        f"{API}/runs", "{}", content_type="application/json", headers=api._headers(),
        CONTENT_LENGTH="9" * 5000,  # int() refuses texts this long
    )  # fmt: skip
    assert response.status_code == 413, response.content


@pytest.mark.parametrize("cursor", ["\u00b2", "9" * 30, "12abc", "-1", ""])
def test_the_audit_page_ignores_a_cursor_that_is_not_an_id(
    client: Client, boss_user: User, cursor: str
) -> None:
    client.force_login(boss_user)
    AuditEntry.objects.create(actor_label="boss", action="run.launch", details={})

    response = client.get(reverse("tasks_app:audit"), {"cursor": cursor})

    assert response.status_code == 200
    assert response.context["page"].entries  # the first page, as without a cursor


# --- unknown input ---------------------------------------------------------------------------


def test_every_operation_refuses_unknown_query_parameters_and_changes_nothing(
    api: Api, broker: str
) -> None:
    run = make_run()
    schedule = PeriodicTask.objects.get(name="Taskdeck: reap lost runs")
    valid_bodies: dict[tuple[str, str], Any] = {
        ("post", "/runs"): {"job": "demo.progress"},
        ("post", "/runs/retry"): {"task_ids": [run.task_id]},
        ("post", "/runs/batch"): {"job": "demo.progress", "items": [{"params": {"steps": 1}}]},
        ("post", "/schedules"): {
            "name": "x", "job": "demo.progress", "timing": {"kind": "interval", "every": 5},
        },
        ("post", "/alerts/rules"): {"name": "x", "kind": "run_failed"},
        ("put", "/me/preferences"): {"time_display": "utc"},
        ("post", "/runs/bulk-operations"): {"action": "retry", "filters": {"job": "demo.flaky"}},
        ("put", "/jobs/{name}/concurrency"): {"concurrency": 2},
        ("post", "/alerts/channels"): {
            "name": "x", "kind": "email", "email_to": ["ops@example.com"],
        },
    }  # fmt: skip
    audited = AuditEntry.objects.count()
    document = api.get("/openapi.json").json()
    tried = 0
    for template, operations in document["paths"].items():
        path = template.removeprefix(API).format(task_id=run.task_id, pk=schedule.pk, name="low")
        for method in operations:
            if method == "get":
                response = api.get(path, bogus="1")
            else:
                body = valid_bodies.get((method, template.removeprefix(API)), {})
                response = api.send(method, f"{path}?bogus=1", body)
            assert response.status_code == 400, (method, template, response.content)
            assert response.json()["errors"] == {"bogus": ["Unknown parameter."]}, template
            tried += 1
    assert tried == sum(len(operations) for operations in document["paths"].values()) >= 13
    assert list(Run.objects.all()) == [run]
    assert not AlertRule.objects.exists()
    assert not AlertChannel.objects.exists()
    assert PeriodicTask.objects.filter(pk=schedule.pk, enabled=True).exists()
    assert not PeriodicTask.objects.filter(name="x").exists()
    assert AuditEntry.objects.count() == audited
    assert api.get("/runs", state="FAILURE", limit=5).status_code == 200  # declared ones work


@pytest.mark.parametrize("raw", ['{"terminate": true}', "[]", "null", "0", "x", '{"a": {}}'])
def test_operations_that_take_no_body_refuse_one(api: Api, broker: str, raw: str) -> None:
    run = make_run()
    schedule = api.post(
        "/schedules",
        {"name": "s", "job": "demo.progress", "timing": {"kind": "interval", "every": 5}},
    ).json()

    # POST /runs/{task_id}/retry takes an optional body now: tests/integration/api/test_rerun_api.py
    for path in (f"/schedules/{schedule['id']}/run",):
        response = api.post(path, raw=raw)
        assert response.status_code == 400, (path, response.content)
        assert "body" in response.json()["errors"]
    assert list(Run.objects.all()) == [run]


def test_operations_that_take_no_body_accept_none_or_an_empty_object(api: Api, broker: str) -> None:
    first, second = make_run(n=1), make_run(n=2)

    empty = api.post(f"/runs/{first.task_id}/retry", raw="")
    braces = api.post(f"/runs/{second.task_id}/retry", raw=" { } ")

    assert (empty.status_code, braces.status_code) == (201, 201), empty.content
    document = api.get("/openapi.json").json()["paths"]
    for template in (f"{API}/schedules/{{pk}}/run",):  # the retry's optional body: test_rerun_api
        body = document[template]["post"]["requestBody"]
        assert body["required"] is False
        assert body["content"]["application/json"]["schema"]["additionalProperties"] is False


# --- jobs and runs ---------------------------------------------------------------------------


def _choice_values(field: forms.Field) -> list[str]:
    return sorted(str(value) for value, _label in getattr(field, "choices", ()) if value != "")


def _enum_values(schema: dict[str, Any]) -> list[str]:
    values = schema.get("enum", schema.get("items", {}).get("enum", []))
    return sorted(str(value) for value in values if value is not None)


def test_jobs_publish_the_same_schema_as_the_launch_form(
    api: Api, client: Client, boss_user: User
) -> None:
    """For every registered job, the schema GET jobs publishes against the launch form the
    dashboard renders for it: the same fields, the same required ones, the same choices and
    number bounds. A change to one that the other does not follow fails here."""
    client.force_login(boss_user)
    jobs = {job["name"]: job for job in api.get("/jobs").json()}
    assert set(jobs) == {spec.name for spec in all_jobs()}
    compared_choices = 0
    for name, published in jobs.items():
        page = client.get(reverse("tasks_app:launch", args=[name]))
        assert page.status_code == 200, name
        form = page.context["form"]
        html = page.content.decode()
        schema = published["params_schema"]
        properties = schema["properties"]

        assert set(properties) == set(form.fields), name
        required = {field for field, f in form.fields.items() if f.required}
        assert set(schema["required"]) == required, name
        for field, prop in properties.items():
            form_field = form.fields[field]
            assert f'name="{field}"' in html, (name, field)
            assert _enum_values(prop) == _choice_values(form_field), (name, field)
            for choice in _choice_values(form_field):
                assert f'value="{choice}"' in html, (name, field, choice)
                compared_choices += 1
            attrs = form_field.widget_attrs(form_field.widget)
            for key, attr in (("minimum", "min"), ("maximum", "max")):
                if key in prop or attr in attrs:
                    assert float(attrs[attr]) == prop[key], (name, field, key)
    assert compared_choices  # taskdeck.export_runs has state choices: the check ran
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


def test_a_run_is_named_by_its_task_id_only_in_answers_paths_and_the_document(
    api: Api, broker: str
) -> None:
    """Runs used to carry the ledger's integer `id` while every path took the task id
    (`GET runs/1` was a 404): the integer is gone, the task id is the one name."""
    launched = api.post("/runs", {"job": "demo.progress", "params": {"steps": 1}}).json()
    listed = api.get("/runs", limit=1).json()["items"][0]
    run = Run.objects.get(task_id=launched["task_id"])

    assert "id" not in launched
    assert "id" not in listed
    assert listed["task_id"] == launched["task_id"]
    assert api.get(f"/runs/{launched['task_id']}").json()["task_id"] == run.task_id
    assert api.get(f"/runs/{run.pk}").status_code == 404
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    assert "id" not in schemas["RunSummaryOut"]["properties"]
    assert "id" not in schemas["RunOut"]["properties"]
    assert "task_id" in schemas["RunOut"]["required"]


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


def test_launching_a_job_that_runs_only_on_its_schedule_names_the_job_field(
    api: Api, broker: str
) -> None:
    response = api.post("/runs", {"job": "taskdeck.reap_lost_runs"})

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]) == ["job"]
    assert "runs on its schedule only" in response.json()["errors"]["job"][0]
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


def test_bulk_retry_reports_unknown_task_ids(api: Api, broker: str) -> None:
    failed = make_run(n=20)
    succeeded = make_run(n=21, state=RunState.SUCCESS)
    unknown = "no-such-run"

    response = api.post(
        "/runs/retry", {"task_ids": [failed.task_id, unknown, succeeded.task_id, unknown]}
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert len(body["retried"]) == 1
    assert Run.objects.get(task_id=body["retried"][0]["task_id"]).retry_of == failed
    skipped = {item["task_id"]: item["reason"] for item in body["skipped"]}
    assert len(body["skipped"]) == 2  # the unknown id once, though given twice
    assert skipped[unknown] == "unknown"
    assert skipped[succeeded.task_id].startswith("is ")
    entry = AuditEntry.objects.get(action="runs.retry_bulk")
    assert entry.details["skipped"][unknown] == "unknown"


def test_the_bulk_limit_is_the_setting_and_its_error_names_the_field_sent(
    api: Api, broker: str, settings: Any
) -> None:
    runs = [make_run(n=30 + n) for n in range(3)]
    settings.TASKDECK_BULK_LIMIT = 2

    by_ids = api.post("/runs/retry", {"task_ids": [r.task_id for r in runs]})
    unknown_ids = api.post("/runs/retry", {"task_ids": ["a", "b", "c"]})  # asked for, counted
    by_filter = api.post("/runs/retry", {"filter": {"job": "demo.flaky"}})

    for response, field in ((by_ids, "task_ids"), (unknown_ids, "task_ids"), (by_filter, "filter")):
        assert response.status_code == 400, response.content
        assert list(response.json()["errors"]) == [field]
    assert not Run.objects.filter(source=RunSource.RETRY).exists()

    # Above the old hard-coded 1000: as many as the setting allows.
    settings.TASKDECK_BULK_LIMIT = 1500
    many = api.post("/runs/retry", {"task_ids": [f"gone-{n}" for n in range(1001)]})
    assert many.status_code == 200, many.content
    assert len(many.json()["skipped"]) == 1001


def test_the_document_shows_the_bulk_limit_of_the_setting(api: Api, settings: Any) -> None:
    schema = api.get("/openapi.json").json()["components"]["schemas"]["BulkRetryIn"]
    assert schema["properties"]["task_ids"]["maxItems"] == settings.TASKDECK_BULK_LIMIT


@pytest.mark.django_db(transaction=True)
def test_a_run_launched_through_the_api_runs_on_the_real_worker(
    api: Api, boss_user: User, worker: WorkerProcess
) -> None:
    launched = api.post(
        "/runs", {"job": "demo.progress", "params": {"steps": 4, "step_seconds": 0.05}}
    )
    assert launched.status_code == 201, launched.content
    task_id = launched.json()["task_id"]

    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = api.get(f"/runs/{task_id}").json()
        return body if body["state"] in ("SUCCESS", "FAILURE", "REVOKED", "LOST") else None

    body = wait_for(finished, timeout=30)

    assert body["state"] == "SUCCESS", body["error"]
    assert body["result"] == {"steps": 4}
    assert body["progress"]["percent"] == 100
    assert (body["progress"]["done"], body["progress"]["total"]) == (4, 4)
    assert body["worker"].startswith("test-worker")
    assert body["attempts"] == 1
    queued, started, ended = (
        datetime.fromisoformat(body[k]) for k in ("queued_at", "started_at", "finished_at")
    )
    assert queued <= started <= ended
    assert 0.15 <= body["duration_seconds"] < 30  # 4 steps of 0.05 s, measured by the worker
    assert body["launched_by"] == "boss (token ci)"
    entry = AuditEntry.objects.get(action="run.launch", target_id=task_id)
    assert (entry.actor_user_id, entry.actor_label) == (boss_user.pk, "boss (token ci)")


@pytest.fixture
def guarded_job() -> Iterator[str]:
    """A job that needs its own permission (manage_schedules stands in for one)."""
    name = "tests.guarded"

    @job(name=name, retry="no_retry", permission="tasks_app.manage_schedules")
    def guarded(ctx: JobContext) -> None:
        """Never runs here."""

    try:
        yield name
    finally:
        registry._REGISTRY.pop(name, None)
        current_app.tasks.pop(name, None)


def test_cancelling_needs_the_jobs_own_permission(
    client: Client, guarded_job: str, broker: str
) -> None:
    user = User.objects.create_user("canceller", password="x-Secret-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="cancel_run"))
    caller = Api(client, issue_token(user, "ci")[1])
    run = make_run(state=RunState.PENDING, job_name=guarded_job, params={})

    refused = caller.post(f"/runs/{run.task_id}/cancel", {"terminate": False})
    bulk = services.runs_cancel_bulk(actor=Actor(user=User.objects.get(pk=user.pk)), ids=[run.pk])

    assert refused.status_code == 403, refused.content
    assert "tasks_app.manage_schedules" in refused.json()["detail"]
    assert bulk.done == []
    assert [why for _run, why in bulk.skipped] == ["needs a permission you lack"]
    run.refresh_from_db()
    assert run.state == RunState.PENDING
    assert run.cancel_requested_at is None
    assert not AuditEntry.objects.filter(action="run.cancel").exists()

    user.user_permissions.add(Permission.objects.get(codename="manage_schedules"))
    allowed = caller.post(f"/runs/{run.task_id}/cancel", {"terminate": False})
    assert allowed.status_code == 200, allowed.content
    assert allowed.json()["run"]["state"] == "REVOKED"


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

    assert any(s["name"] == "nightly" for s in api.get("/schedules").json()["items"])
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


@pytest.mark.django_db(transaction=True)
def test_stats(api: Api, worker: WorkerProcess) -> None:
    make_run()
    body = api.get("/stats").json()
    assert body["runs_last_24h"] == {"FAILURE": 1}
    assert body["broker_up"] is True
    assert {q["name"] for q in body["queues"]} == {"high", "default", "low"}
    online = [w for w in body["workers"] if w["name"].startswith("test-worker")]
    assert len(online) == 1, body["workers"]
    (seen,) = online
    assert seen["pool"] == "prefork"
    assert seen["concurrency"] == 2
    assert set(seen["queues"]) == {"high", "default", "low"}
    assert seen["uptime_seconds"] is not None
    assert seen["uptime_seconds"] >= 0
    assert seen["active"] >= 0
