"""A sensitive parameter's value appears nowhere but in the job: not in the pages, the API, the
run ledger, TaskResult, PeriodicTask, the audit trail, the broker's messages or the logs.

The secret goes in through every door (the launch form, the API, a schedule, a retry, code),
real jobs run on the real worker, and then everything that could hold it is searched. The job
proves it got the value: it returns its length."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import redis
from django.contrib.auth.models import User
from django.core import serializers
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult

import tests.support.secret_jobs  # noqa: F401 - registers the jobs the migration test uses
from tasks_app import services
from tasks_app.jobs.registry import get_job
from tasks_app.jobs.sealing import is_sealed, unseal
from tasks_app.models import AuditEntry, DeclaredSchedule, Run, RunState
from tasks_app.services import Actor
from tasks_app.tokens import issue_token
from tests.support.runs import finished
from tests.support.services import WorkerProcess, wait_for

SECRET = "S3cr3t-hunter2-XYZ"


def redis_client(url: str) -> redis.Redis:
    from tasks_app.schedules.beat import lock_redis_url

    return redis.Redis.from_url(lock_redis_url(url))


def test_a_sensitive_value_reaches_the_job_and_nothing_else(
    worker: WorkerProcess, broker_url: str, client: Client, tmp_path: Path
) -> None:
    boss = User.objects.create_superuser("boss", password="x-Secret-123")
    actor = Actor(user=boss)
    client.force_login(boss)
    token = issue_token(boss, "ci")[1]
    bearer = {"Authorization": f"Bearer {token}"}

    # In through every door.
    page = client.post(
        reverse("tasks_app:launch", args=["demo.sensitive"]),
        {"password": SECRET, "label": "form"},
    )
    assert page.status_code == 302
    api = client.post(
        "/api/v1/runs",
        {"job": "demo.sensitive", "params": {"password": SECRET, "label": "api"}},
        content_type="application/json",
        headers=bearer,
    )
    assert api.status_code == 201
    created = client.post(
        "/api/v1/schedules",
        {
            "name": "nightly secret",
            "job": "demo.sensitive",
            "params": {"password": SECRET, "label": "schedule"},
            "timing": {"kind": "crontab", "cron": "0 3 * * *"},
        },
        content_type="application/json",
        headers=bearer,
    )
    assert created.status_code == 201
    schedule = PeriodicTask.objects.get(name="nightly secret")
    services.schedule_run_now(schedule, actor=actor)
    coded = get_job("demo.sensitive").task.delay(password=SECRET, label="code")

    # A message waiting in the broker carries the sealed value only.
    parked = get_job("demo.sensitive").task.apply_async(
        kwargs={"password": SECRET, "label": "parked"}, queue="nobody-reads-this"
    )
    waiting = redis_client(broker_url).lrange("nobody-reads-this", 0, -1)
    assert waiting
    assert all(SECRET.encode() not in message for message in waiting)

    # The job gets the value (it returns its length) and every run succeeds.
    # (Only this job's: runs that earlier tests queued while the worker ran may remain.)
    task_ids = [
        r.task_id for r in Run.objects.filter(job_name="demo.sensitive").exclude(task_id=parked.id)
    ]
    assert len(task_ids) == 4
    for task_id in task_ids:
        run = finished(task_id)
        assert run.state == RunState.SUCCESS, run.error
        result = json.loads(TaskResult.objects.get(task_id=task_id).result)
        assert result["secret_length"] == len(SECRET)
    assert Run.objects.get(task_id=coded.id).state == RunState.SUCCESS
    # A retry sends exactly the sealed value it was given (retries need a failed run).
    run_api = Run.objects.get(task_id=api.json()["task_id"])
    Run.objects.filter(pk=run_api.pk).update(state=RunState.FAILURE)
    again = services.run_retry(Run.objects.get(pk=run_api.pk), actor=actor)
    assert finished(again.task_id).state == RunState.SUCCESS
    assert Run.objects.get(pk=again.pk).params == run_api.params  # the exact sealed value

    # The stored value is sealed, and opens to the secret.
    stored = Run.objects.get(task_id=task_ids[0]).params["password"]
    assert is_sealed(stored)
    assert unseal(stored) == SECRET

    # Nowhere in the database...
    for model in (Run, TaskResult, PeriodicTask, AuditEntry, DeclaredSchedule):
        dump = serializers.serialize("json", model.objects.all())
        assert SECRET not in dump, model.__name__

    # ...the pages, the admin...
    runs = list(Run.objects.all())
    urls = [
        reverse("tasks_app:overview"),
        reverse("tasks_app:runs"),
        reverse("tasks_app:audit"),
        reverse("tasks_app:schedules"),
        reverse("tasks_app:schedule", args=[schedule.pk]),
        reverse("tasks_app:schedule_edit", args=[schedule.pk]),
        reverse("admin:django_celery_beat_periodictask_change", args=[schedule.pk]),
        reverse("admin:django_celery_results_taskresult_changelist"),
        reverse("admin:tasks_app_run_changelist"),
        *[reverse("tasks_app:run", args=[r.task_id]) for r in runs],
        *[reverse("admin:tasks_app_run_change", args=[r.pk]) for r in runs],
        *[
            reverse("admin:django_celery_results_taskresult_change", args=[t.pk])
            for t in TaskResult.objects.all()
        ],
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert SECRET not in response.content.decode(), url

    # ...the API...
    for path in ["/api/v1/runs", "/api/v1/schedules", *[f"/api/v1/runs/{r.task_id}" for r in runs]]:
        body = client.get(path, headers=bearer).content.decode()
        assert SECRET not in body, path

    # ...and the worker's log.
    wait_for(lambda: "secret of" in worker.log_path.read_text(errors="replace"))
    assert SECRET not in worker.log_path.read_text(errors="replace")

    redis_client(broker_url).delete("nobody-reads-this")


@pytest.mark.django_db
def test_the_migration_seals_values_stored_before_sealing() -> None:
    from django.apps import apps
    from django.utils import timezone

    migration = importlib.import_module("tasks_app.migrations.0006_seal_sensitive_params")
    run = Run.objects.create(
        task_id="old-1", job_name="demo.sensitive", queued_at=timezone.now(),
        params={"password": SECRET, "label": "old"},
    )  # fmt: skip
    task = PeriodicTask.objects.create(
        name="old schedule", task="demo.sensitive", kwargs=json.dumps({"password": SECRET}),
        interval=IntervalSchedule.objects.create(every=1, period="hours"),
    )  # fmt: skip

    migration.seal_stored(apps, None)

    run.refresh_from_db()
    task.refresh_from_db()
    assert SECRET not in json.dumps(run.params)
    assert SECRET not in task.kwargs
    assert unseal(run.params["password"]) == SECRET
    assert run.params["label"] == "old"
    assert unseal(json.loads(task.kwargs)["password"]) == SECRET


@pytest.mark.django_db
def test_the_migration_binds_stored_sealed_values_and_seals_function_job_secrets() -> None:
    from django.apps import apps
    from django.utils import timezone
    from django_celery_beat.models import PeriodicTasks

    from tasks_app.jobs.sealing import open_sealed, seal
    from tests.support.secret_jobs import API_KEY

    migration = importlib.import_module("tasks_app.migrations.0009_bind_sealed_params")
    unbound = seal(SECRET)  # as sealed before binding existed
    run = Run.objects.create(
        task_id="old-2", job_name="demo.sensitive", queued_at=timezone.now(),
        params={"password": unbound, "label": "old"},
    )  # fmt: skip
    clear = Run.objects.create(
        task_id="old-3", job_name="secrets.function", queued_at=timezone.now(),
        params={"api_key": API_KEY, "label": "old"},  # @job(sensitive=) was stored in clear
    )  # fmt: skip
    task = PeriodicTask.objects.create(
        name="old schedule", task="demo.sensitive", kwargs=json.dumps({"password": unbound}),
        interval=IntervalSchedule.objects.create(every=1, period="hours"),
    )  # fmt: skip
    PeriodicTasks.objects.update_or_create(ident=1, defaults={"last_update": timezone.now()})
    marker = PeriodicTasks.objects.get(ident=1).last_update

    migration.bind_sealed(apps, None)

    run.refresh_from_db()
    clear.refresh_from_db()
    task.refresh_from_db()
    bound = open_sealed(run.params["password"])
    assert (bound.value, bound.bound_to) == (SECRET, ("demo.sensitive", "password"))
    assert run.params["label"] == "old"
    assert API_KEY not in json.dumps(clear.params)
    assert open_sealed(clear.params["api_key"]).bound_to == ("secrets.function", "api_key")
    assert unseal(clear.params["api_key"]) == API_KEY
    scheduled = open_sealed(json.loads(task.kwargs)["password"])
    assert (scheduled.value, scheduled.bound_to) == (SECRET, ("demo.sensitive", "password"))
    assert PeriodicTasks.objects.get(ident=1).last_update > marker  # beat re-reads its schedules
    # What it bound validates again, as a retry or beat sends it.
    assert (
        get_job("demo.sensitive").params.validate(run.params)["password"] == run.params["password"]
    )
