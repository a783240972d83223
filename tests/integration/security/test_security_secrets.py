"""Sensitive parameters of every type, and sealed values sent by a client (issue 11, items 1, 2
and the sealed-value part of 7), on the real stack: database, Redis, a real worker, the test
client through the dashboard, the admin and the API.

- A schedule edit re-shown with an error never puts a stored (or just typed) secret in the
  HTML, whatever the parameter's type, for function jobs and form jobs; left empty, a field
  keeps the stored sealed value, unchanged.
- `@job(sensitive=[...])` on a function job seals as `Param(sensitive=True)` does: in the run
  ledger, the schedule, the broker's message, the result store; masked in the API.
- A `{"$sealed": ...}` value sealed for another job or parameter (or before binding existed)
  is refused with an error naming the field, and nothing is queued or saved; a retry and an
  unchanged stored schedule value keep working.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest
import redis
from django.contrib.auth.models import Permission, User
from django.core import serializers
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult

from tasks_app import services
from tasks_app.jobs.params import MASK, STORED_SECRET_HELP
from tasks_app.jobs.registry import get_job, masked_params
from tasks_app.jobs.sealing import is_sealed, open_sealed, seal, unseal
from tasks_app.models import AuditEntry, Run, RunState
from tasks_app.schedules.beat import lock_redis_url
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing
from tasks_app.services import Actor
from tasks_app.tokens import issue_token
from tests.support import secret_jobs
from tests.support.runs import finished
from tests.support.secret_jobs import (
    ACCOUNT,
    API_KEY,
    CODES,
    DAY,
    LIMIT,
    PASSWORD,
    PIN,
    TIER,
    digest,
)
from tests.support.services import WorkerProcess, child_env

FUNCTION = "secrets.function"
FORM = "secrets.form"
# Every sensitive value as it could appear in text (the choice is checked apart: its option
# is listed, never selected).
SECRET_TEXTS = (str(PIN), DAY.isoformat(), *CODES, API_KEY, PASSWORD, ACCOUNT, str(LIMIT))
TYPED = "typed-then-refused-3317"
SENSITIVE = ("pin", "day", "codes", "tier", "api_key", "password")
HERE = Path(__file__).resolve()


def function_params(**changes: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "pin": PIN, "day": DAY.isoformat(), "codes": list(CODES), "tier": TIER,
        "api_key": API_KEY, "password": PASSWORD, "label": "visible-label",
    }  # fmt: skip
    params.update(changes)
    return params


def form_params() -> dict[str, Any]:
    return {"account": ACCOUNT, "limit": LIMIT, "label": "visible-label"}


def assert_no_secret(text: str, where: str = "") -> None:
    for secret in (*SECRET_TEXTS, TYPED):
        assert secret not in text, f"{secret!r} in {where}"
    assert not re.search(rf'value="{TIER}"[^>]*(selected|checked)', text), where


def boss_user() -> User:
    return User.objects.create_superuser("boss", password="x-Secret-123")


def schedule_of(job: str, params: dict[str, Any], name: str = "secret schedule") -> PeriodicTask:
    definition = ScheduleDefinition(
        name=name, job=job, timing=Timing(Kind.CRONTAB, cron="0 3 * * *"), params=params
    )
    owner, _ = User.objects.get_or_create(username="owner", defaults={"is_superuser": True})
    return services.schedule_save(definition, actor=Actor(user=owner))


def kwargs_of(task: PeriodicTask) -> dict[str, Any]:
    task.refresh_from_db()
    kwargs = json.loads(task.kwargs)
    assert isinstance(kwargs, dict)
    return kwargs


def empty_fields(job: str) -> dict[str, str]:
    """The job's parameter fields as a browser sends them with every secret left empty."""
    if job == FUNCTION:
        empty = dict.fromkeys((f"param-{n}" for n in SENSITIVE), "")
        return {**empty, "param-label": "edited-label"}
    return {"param-account": "", "param-limit": "", "param-label": "edited-label"}


def editor_post(job: str, **changes: str) -> dict[str, str]:
    data = {
        "name": "secret schedule", "job": job, "kind": "crontab", "cron": "0 3 * * *",
        "timezone": "UTC", "period": "minutes", "enabled": "on", **empty_fields(job),
    }  # fmt: skip
    data.update(changes)
    return data


def admin_post(task: PeriodicTask, job: str, **changes: str) -> dict[str, str]:
    data = {
        "name": task.name, "job": job, "enabled": "on", "description": "",
        "interval": "", "crontab": str(task.crontab_id), "solar": "", "clocked": "",
        "start_time_0": "", "start_time_1": "", "expires_0": "", "expires_1": "",
        "expire_seconds": "", "queue": "", "priority": "", **empty_fields(job),
    }  # fmt: skip
    data.update(changes)
    return data


# --- 1. a failed schedule edit never sends a stored secret --------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(("job", "params"), [(FUNCTION, function_params()), (FORM, form_params())])
def test_a_failed_edit_in_the_dashboard_editor_shows_no_stored_secret(
    client: Client, job: str, params: dict[str, Any]
) -> None:
    client.force_login(boss_user())
    task = schedule_of(job, params)
    before = kwargs_of(task)
    url = reverse("tasks_app:schedule_edit", args=[task.pk])

    page = client.get(url).content.decode()
    assert_no_secret(page, "the editor")
    assert STORED_SECRET_HELP in page  # it says a value is stored, without showing it

    # Refused (a bad cron), every secret left empty: re-shown without them.
    refused = client.post(url, editor_post(job, cron="not a cron"))
    assert refused.status_code == 400
    assert_no_secret(refused.content.decode(), "the re-shown editor")
    # Refused with a secret just typed: not echoed back either.
    typed = editor_post(job, cron="not a cron")
    typed["param-password" if job == FUNCTION else "param-account"] = TYPED
    again = client.post(url, typed)
    assert again.status_code == 400
    assert_no_secret(again.content.decode(), "the re-shown editor")
    assert kwargs_of(task) == before

    # Saved with every secret left empty: the stored sealed values are kept, unchanged.
    saved = client.post(url, editor_post(job))
    assert saved.status_code == 302, saved.content.decode()
    after = kwargs_of(task)
    assert after["label"] == "edited-label"
    assert {k: v for k, v in after.items() if k != "label"} == {
        k: v for k, v in before.items() if k != "label"
    }


@pytest.mark.django_db
@pytest.mark.parametrize(("job", "params"), [(FUNCTION, function_params()), (FORM, form_params())])
def test_a_failed_edit_in_the_admin_shows_no_stored_secret(
    client: Client, job: str, params: dict[str, Any]
) -> None:
    user = User.objects.create_user("ops", password="x-Secret-123", is_staff=True)
    codenames = ["change_periodictask", "view_periodictask", "manage_schedules", "launch_job"]
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    task = schedule_of(job, params)
    before = kwargs_of(task)
    url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])

    page = client.get(url).content.decode()
    assert_no_secret(page, "the admin change form")
    assert STORED_SECRET_HELP in page

    refused = client.post(url, admin_post(task, job, priority="12"))
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors
    assert_no_secret(refused.content.decode(), "the re-shown admin form")
    assert kwargs_of(task) == before

    saved = client.post(url, admin_post(task, job))
    assert saved.status_code == 302, saved.content.decode()
    after = kwargs_of(task)
    assert after["label"] == "edited-label"
    assert {k: v for k, v in after.items() if k != "label"} == {
        k: v for k, v in before.items() if k != "label"
    }


@pytest.mark.django_db
def test_every_sensitive_field_is_write_only_on_the_launch_form(client: Client) -> None:
    client.force_login(boss_user())
    url = reverse("tasks_app:launch", args=[FUNCTION])
    data = {k: str(v) for k, v in function_params().items()}
    data["codes"] = "\n".join(CODES)
    data["pin"] = "not a number"  # refused: the form is shown again
    response = client.post(url, data)

    assert response.status_code == 400
    html = response.content.decode()
    for secret in (DAY.isoformat(), *CODES, API_KEY, PASSWORD):
        assert secret not in html
    assert not re.search(rf'value="{TIER}"[^>]*selected', html)
    assert "Enter a whole number." in html
    assert not Run.objects.exists()


# --- 2. @job(sensitive=[...]) seals a function job's values everywhere -----------------------


@pytest.mark.processes  # a worker of its own, for the jobs only this test registers
def test_a_function_jobs_sensitive_values_are_sealed_everywhere(
    transactional_db: None, broker_url: str, client: Client, tmp_path: Path
) -> None:
    boss = boss_user()
    bearer = {"Authorization": f"Bearer {issue_token(boss, 'ci')[1]}"}
    spec = get_job(FUNCTION)
    assert spec.sensitive == frozenset(SENSITIVE)
    assert {p.name for p in spec.params.params if p.sensitive} == set(SENSITIVE)
    queue, parked = "secrets-jobs", "secrets-parked"
    worker = WorkerProcess(
        broker_url, tmp_path / "worker.log", name="secrets", queues=(queue,),
        env=child_env(broker_url), extra_args=("--include", secret_jobs.__name__),
    )  # fmt: skip
    broker = redis.Redis.from_url(lock_redis_url(broker_url))
    worker.start()
    try:
        # The API: sealed in the ledger and the schedule, masked in every answer.
        launched = client.post(
            "/api/v1/runs", {"job": FUNCTION, "params": function_params()},
            content_type="application/json", headers=bearer,
        )  # fmt: skip
        assert launched.status_code == 201, launched.content.decode()
        created = client.post(
            "/api/v1/schedules",
            {"name": "fn secrets", "job": FUNCTION, "params": function_params(),
             "timing": {"kind": "crontab", "cron": "0 3 * * *"}},
            content_type="application/json", headers=bearer,
        )  # fmt: skip
        assert created.status_code == 201, created.content.decode()
        ran = spec.task.apply_async(kwargs=function_params(), queue=queue)
        waiting = spec.task.apply_async(kwargs=function_params(), queue=parked)

        # The broker's message holds sealed values only.
        messages = broker.lrange(parked, 0, -1)
        assert messages
        for message in messages:
            text = message.decode(errors="replace") if isinstance(message, bytes) else message
            assert_no_secret(text, "the broker's message")

        run = finished(ran.id)
        assert run.state == RunState.SUCCESS, run.error
        result = json.loads(TaskResult.objects.get(task_id=ran.id).result)
        expected = function_params(day=DAY)
        assert result == {name: digest(expected[name]) for name in SENSITIVE}  # the job saw them

        for task_id in (launched.json()["task_id"], ran.id, waiting.id):
            stored = Run.objects.get(task_id=task_id).params
            for name in SENSITIVE:
                assert is_sealed(stored[name]), name
                assert open_sealed(stored[name]).bound_to == (FUNCTION, name)
            assert unseal(stored["pin"]) == PIN
            assert stored["label"] == "visible-label"
        schedule = PeriodicTask.objects.get(name="fn secrets")
        assert unseal(json.loads(schedule.kwargs)["codes"]) == CODES

        for model in (Run, TaskResult, PeriodicTask, AuditEntry):
            assert_no_secret(serializers.serialize("json", model.objects.all()), model.__name__)
        for path in (
            "/api/v1/runs", f"/api/v1/runs/{ran.id}", "/api/v1/schedules",
            f"/api/v1/schedules/{schedule.pk}",
        ):  # fmt: skip
            body = client.get(path, headers=bearer)
            assert body.status_code == 200
            assert_no_secret(body.content.decode(), path)
        shown = client.get(f"/api/v1/runs/{ran.id}", headers=bearer).json()["params"]
        assert shown == {**dict.fromkeys(SENSITIVE, MASK), "label": "visible-label"}
    finally:
        worker.stop()
        broker.delete(parked)


# --- the one masking helper ---------------------------------------------------------------------


def test_every_page_api_admin_and_export_masks_through_one_helper() -> None:
    """No module masks parameters by hand: `spec.mask(...)` / `.params.mask(...)` calls are
    only in the jobs package, behind `masked_params`."""
    app = HERE.parents[3] / "tasks_app"
    assert (app / "worker" / "backend.py").is_file()  # the walk below must see the app's code
    by_hand = []
    for path in app.rglob("*.py"):
        if "jobs" in path.relative_to(app).parts or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "mask"
            ):
                by_hand.append(f"{path.relative_to(app)}:{node.lineno}")
    assert by_hand == []


@pytest.mark.django_db
def test_the_masking_helper_hides_sealed_values_of_any_job() -> None:
    stored = function_params()
    sealed = get_job(FUNCTION).params.validate(stored)
    assert masked_params(FUNCTION, sealed) == {
        **dict.fromkeys(SENSITIVE, MASK),
        "label": "visible-label",
    }
    # A job no longer registered: its sealed values are still masked.
    assert masked_params("gone.job", {"x": sealed["pin"], "y": 1}) == {"x": MASK, "y": 1}
    assert masked_params(FUNCTION, {"pin": None, "codes": []}) == {"pin": None, "codes": []}


# --- 7. a sealed value sent by a client ---------------------------------------------------


@pytest.mark.django_db
def test_a_foreign_sealed_value_is_refused_by_the_api_and_nothing_is_queued(
    client: Client, broker: str
) -> None:
    boss = boss_user()
    bearer = {"Authorization": f"Bearer {issue_token(boss, 'ci')[1]}"}
    task = schedule_of(FUNCTION, function_params())
    stored = kwargs_of(task)
    foreign = {
        "another job's": seal("guess", "demo.sensitive", "password"),
        "another parameter's (stored)": stored["api_key"],
        "an unbound": seal(PASSWORD),
        # Right job and parameter, but not the value stored here (another run's or schedule's).
        "another run's": seal("copied", FUNCTION, "password"),
    }
    for why, token in foreign.items():
        launch = client.post(
            "/api/v1/runs", {"job": FUNCTION, "params": function_params(password=token)},
            content_type="application/json", headers=bearer,
        )  # fmt: skip
        assert launch.status_code == 400, why
        assert "params.password" in launch.json()["errors"], why

        create = client.post(
            "/api/v1/schedules",
            {"name": "forged", "job": FUNCTION, "params": function_params(password=token),
             "timing": {"kind": "crontab", "cron": "0 3 * * *"}},
            content_type="application/json", headers=bearer,
        )  # fmt: skip
        assert create.status_code == 400, why
        assert "params.password" in create.json()["errors"], why

        edit = client.patch(
            f"/api/v1/schedules/{task.pk}", {"params": {**stored, "password": token}},
            content_type="application/json", headers=bearer,
        )  # fmt: skip
        assert edit.status_code == 400, why
        assert "params.password" in edit.json()["errors"], why
    assert not Run.objects.exists()
    assert not PeriodicTask.objects.filter(name="forged").exists()
    assert kwargs_of(task) == stored

    # Its own stored values, sent back masked (as the API shows them) or as stored: kept.
    kept = client.patch(
        f"/api/v1/schedules/{task.pk}",
        {"params": {**dict.fromkeys(SENSITIVE, MASK), "label": "new"}},
        content_type="application/json", headers=bearer,
    )  # fmt: skip
    assert kept.status_code == 200, kept.content.decode()
    assert kwargs_of(task) == {**stored, "label": "new"}
    as_stored = client.patch(
        f"/api/v1/schedules/{task.pk}", {"params": {**stored, "label": "new"}},
        content_type="application/json", headers=bearer,
    )  # fmt: skip
    assert as_stored.status_code == 200, as_stored.content.decode()
    assert kwargs_of(task) == {**stored, "label": "new"}
    # Run now sends the stored values as they are.
    run = services.schedule_run_now(task, actor=Actor(user=boss))
    assert Run.objects.get(pk=run.pk).params == {**stored, "label": "new"}


@pytest.mark.django_db
def test_a_retry_resends_its_stored_sealed_values(client: Client, broker: str) -> None:
    boss = boss_user()
    first = services.job_launch(FUNCTION, function_params(), actor=Actor(user=boss))
    Run.objects.filter(pk=first.pk).update(state=RunState.FAILURE)

    again = services.run_retry(Run.objects.get(pk=first.pk), actor=Actor(user=boss))

    assert Run.objects.get(pk=again.pk).params == Run.objects.get(pk=first.pk).params


@pytest.mark.django_db
def test_the_admin_refuses_a_foreign_sealed_value_in_raw_kwargs(client: Client) -> None:
    client.force_login(boss_user())
    token = seal(PASSWORD, FUNCTION, "api_key")  # sealed for another parameter
    add = reverse("admin:django_celery_beat_periodictask_add")
    interval = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    data = {
        "name": "forged", "regtask": "", "task": FUNCTION, "enabled": "on", "description": "",
        "interval": str(interval.pk), "crontab": "", "solar": "", "clocked": "",
        "start_time_0": "", "start_time_1": "", "args": "[]",
        "kwargs": json.dumps({"password": token}),
        "expires_0": "", "expires_1": "", "expire_seconds": "", "queue": "", "exchange": "",
        "routing_key": "", "priority": "", "headers": "{}",
    }  # fmt: skip

    response = client.post(f"{add}?plain=1", data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "password" in " ".join(errors.get("kwargs", []))
    assert "another job or parameter" in " ".join(errors["kwargs"])
    assert not PeriodicTask.objects.filter(name="forged").exists()


@pytest.mark.django_db
def test_a_sealed_value_typed_into_a_page_form_is_only_text(client: Client, broker: str) -> None:
    """A form field carries text: a `{"$sealed": ...}` typed into it is sealed as that text,
    never opened, so another parameter's stored secret cannot be borrowed through a page."""
    client.force_login(boss_user())
    stored = kwargs_of(schedule_of(FUNCTION, function_params()))
    typed = json.dumps(stored["api_key"])
    data = editor_post(FUNCTION, name="borrowing")
    data["param-password"] = typed

    response = client.post(reverse("tasks_app:schedule_new"), data)

    assert response.status_code == 302, response.content.decode()
    saved = kwargs_of(PeriodicTask.objects.get(name="borrowing"))
    assert unseal(saved["password"]) == typed
    assert open_sealed(saved["password"]).bound_to == (FUNCTION, "password")
