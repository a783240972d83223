"""`POST /api/v1/runs/{task_id}/retry` with `{"params": {...}}`: the overrides merged over the
original's parameters and validated as a launch's (a 400 naming `params.<name>`, nothing
queued), a sensitive value kept sealed unless replaced and never answered, lineage as a retry's,
the launch permission needed too. Without a body, or with `{}`, it is the plain retry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from tasks_app import services
from tasks_app.jobs.registry import MASK
from tasks_app.jobs.sealing import SEALED, seal, unseal
from tasks_app.models import AuditEntry, Run, RunSource, RunState
from tasks_app.services import Actor
from tasks_app.tokens import issue_token
from tests.support import ledger
from tests.support.runs import finished
from tests.support.services import WorkerProcess

pytestmark = pytest.mark.django_db

API = "/api/v1"
SECRET = "rerun-api-S3cret-never-shown"


class Api:
    """The test client with a bearer token."""

    def __init__(self, client: Client, token: str) -> None:
        self.client, self.token = client, token

    def post(self, path: str, body: Any = None, *, raw: str | None = None) -> Any:
        data = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(
            API + path, data, content_type="application/json",
            headers={"Authorization": f"Bearer {self.token}"},
        )  # fmt: skip

    def get(self, path: str) -> Any:
        return self.client.get(API + path, headers={"Authorization": f"Bearer {self.token}"})


@pytest.fixture
def boss_user() -> User:
    return User.objects.create_superuser("boss", password="x-Secret-123")


@pytest.fixture
def api(client: Client, boss_user: User) -> Api:
    return Api(client, issue_token(boss_user, "ci")[1])


def failed(**fields: Any) -> Run:
    fields.setdefault("params", {"failure_rate": 1.0})
    return ledger.make_run(RunState.FAILURE, finished_at=timezone.now(), **fields)


def sensitive_run(user: User) -> Run:
    run = services.job_launch(
        "demo.sensitive", {"password": SECRET, "label": "first"}, actor=Actor(user=user)
    )
    Run.objects.filter(pk=run.pk).update(state=RunState.FAILURE, finished_at=timezone.now())
    run.refresh_from_db()
    return run


def retry(api: Api, run: Run, body: Any = None, **kw: Any) -> Any:
    return api.post(f"/runs/{run.task_id}/retry", body, **kw)


def test_overrides_are_merged_over_the_original(api: Api, broker: str) -> None:
    original = failed(params={"failure_rate": 1.0}, queue="high")

    response = retry(api, original, {"params": {"failure_rate": 0.3}})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["retry_of"] == body["root"] == original.task_id
    assert body["source"] == "retry"
    assert body["params"] == {"failure_rate": 0.3}
    assert body["queue"] == "high"
    new = Run.objects.get(task_id=body["task_id"])
    assert (new.retry_of_id, new.root_id, new.source) == (original.pk, original.pk, RunSource.RETRY)
    entry = AuditEntry.objects.get(action="run.retry", target_id=new.task_id)
    assert entry.actor_label == "boss (token ci)"
    assert entry.details["changed"] == ["failure_rate"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [({"failure_rate": 5}, "params.failure_rate"), ({"failure_rate": "x"}, "params.failure_rate"),
     ({"failure_rate": None}, "params.failure_rate"), ({"bogus": 1}, "params")],
)  # fmt: skip
def test_invalid_overrides_are_400_naming_the_field_and_queue_nothing(
    api: Api, broker: str, overrides: dict[str, Any], field: str
) -> None:
    original = failed()
    audited = AuditEntry.objects.count()

    response = retry(api, original, {"params": overrides})

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert list(Run.objects.all()) == [original]
    assert AuditEntry.objects.count() == audited


@pytest.mark.parametrize(
    ("body", "field"),
    [({"params": [1]}, "params"), ({"params": {}, "extra": 1}, "extra"),
     ({"terminate": True}, "terminate")],
)  # fmt: skip
def test_a_malformed_body_is_400_naming_the_field(
    api: Api, broker: str, body: dict[str, Any], field: str
) -> None:
    original = failed()

    response = retry(api, original, body)

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert list(Run.objects.all()) == [original]


@pytest.mark.parametrize("raw", ["", "{}", " { } ", "null", '{"params": null}'])
def test_without_params_it_is_the_plain_retry(api: Api, broker: str, raw: str) -> None:
    original = failed()
    succeeded = ledger.make_run(RunState.SUCCESS, params={"failure_rate": 0.0})

    response = retry(api, original, raw=raw)
    refused = retry(api, succeeded, raw=raw)  # a plain retry is for failed runs

    assert response.status_code == 201, response.content
    assert response.json()["params"] == {"failure_rate": 1.0}
    assert refused.status_code == 409
    assert Run.objects.count() == 3


def test_with_params_a_successful_run_may_be_run_again(api: Api, broker: str) -> None:
    succeeded = ledger.make_run(RunState.SUCCESS, params={"failure_rate": 0.0})
    queued = ledger.make_run(RunState.PENDING, params={"failure_rate": 0.0})

    again = retry(api, succeeded, {"params": {}})
    refused = retry(api, queued, {"params": {"failure_rate": 0.5}})

    assert again.status_code == 201, again.content
    assert again.json()["retry_of"] == succeeded.task_id
    assert refused.status_code == 409
    assert "Only finished runs" in refused.json()["detail"]


def test_a_sensitive_value_is_kept_sealed_and_never_answered(
    api: Api, boss_user: User, broker: str
) -> None:
    original = sensitive_run(boss_user)
    stored = original.params["password"]

    left_out = retry(api, original, {"params": {"label": "second"}})
    masked = retry(api, original, {"params": {"password": MASK}})
    replaced = retry(api, original, {"params": {"password": "another"}})

    for response in (left_out, masked, replaced):
        assert response.status_code == 201, response.content
        assert response.json()["params"]["password"] == MASK
        assert SECRET not in response.content.decode()
        assert SEALED not in response.content.decode()
    kept = [Run.objects.get(task_id=r.json()["task_id"]) for r in (left_out, masked)]
    assert [run.params["password"] for run in kept] == [stored, stored]
    changed = Run.objects.get(task_id=replaced.json()["task_id"])
    assert unseal(changed.params["password"]) == "another"


def test_a_sealed_value_from_elsewhere_is_refused(api: Api, boss_user: User, broker: str) -> None:
    original = sensitive_run(boss_user)
    copied = seal("stolen", "demo.sensitive", "password")  # as a client could not have it

    forged = retry(api, original, {"params": {"password": copied}})
    sent_back = retry(api, original, {"params": {"password": original.params["password"]}})

    assert forged.status_code == 400
    assert list(forged.json()["errors"]) == ["params.password"]
    assert sent_back.status_code == 201  # the very value stored: as a schedule's PATCH takes it
    assert Run.objects.count() == 2


@pytest.mark.parametrize("codenames", [("retry_run",), ("launch_job",)])
def test_overrides_need_the_launch_permission_too(
    client: Client, broker: str, codenames: tuple[str, ...]
) -> None:
    user = User.objects.create_user("op", password="x-Secret-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    caller = Api(client, issue_token(user, "op")[1])
    original = failed()

    response = retry(caller, original, {"params": {"failure_rate": 0.5}})

    assert response.status_code == 403, response.content
    assert list(Run.objects.all()) == [original]
    assert not AuditEntry.objects.filter(action="run.retry").exists()


def test_the_document_describes_the_optional_body(api: Api) -> None:
    document = api.get("/openapi.json").json()

    body = document["paths"][f"{API}/runs/{{task_id}}/retry"]["post"]["requestBody"]
    schema = document["components"]["schemas"]["RetryIn"]

    assert body["required"] is False
    refs = body["content"]["application/json"]["schema"]["anyOf"]
    assert {"$ref": "#/components/schemas/RetryIn"} in refs
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == ["params"]
    assert "params.<name>" in schema["properties"]["params"]["description"]


def test_the_rerun_runs_with_the_override_on_the_worker(
    client: Client, worker: WorkerProcess
) -> None:
    boss_user = User.objects.create_superuser("boss", password="x-Secret-123")
    api = Api(client, issue_token(boss_user, "ci")[1])
    launched = api.post("/runs", {"job": "demo.flaky", "params": {"failure_rate": 1.0}})
    original = finished(launched.json()["task_id"], timeout=60)
    assert original.state == RunState.FAILURE

    response = retry(api, original, {"params": {"failure_rate": 0.0}})

    assert response.status_code == 201, response.content
    new = finished(response.json()["task_id"], timeout=60)
    assert new.state == RunState.SUCCESS
    assert api.get(f"/runs/{new.task_id}").json()["result"] == "ok"
