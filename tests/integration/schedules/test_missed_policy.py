"""The missed-run policy on the database: stored and audited by the services, edited in the
dashboard's editor, the Django admin and the API (bad values refused naming the field), kept
across a pause so that beat catches up on resume (or not, under skip), and not an edit of a
declared schedule."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import ClockedSchedule, PeriodicTask
from django_celery_beat.schedulers import ModelEntry

from dashboard.celery import app as celery_app
from tasks_app import services
from tasks_app.models import AuditEntry, Run, ScheduleOptions
from tasks_app.schedules import declared
from tasks_app.schedules.beat import TaskdeckScheduler
from tasks_app.schedules.declared import is_edited
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing, definition_of
from tasks_app.schedules.missed import MissedRuns, missed_runs_of, with_missed
from tasks_app.services import Actor
from tasks_app.tokens import issue_token

pytestmark = pytest.mark.django_db

HOURLY = Timing(Kind.INTERVAL, every=1, period="hours")
API = "/api/v1"


@pytest.fixture
def boss_user() -> User:
    return User.objects.create_superuser("boss", password="x-Secret-123")


@pytest.fixture
def boss(boss_user: User) -> Actor:
    return Actor(user=boss_user)


def hourly(name: str = "hourly report", **changes: Any) -> ScheduleDefinition:
    definition = ScheduleDefinition(
        name=name, job="demo.progress", timing=HOURLY, params={"steps": 1}
    )
    return replace(definition, **changes)


def beat_due(task: PeriodicTask) -> bool:
    """Whether beat's own entry for the stored row is due now."""
    row = PeriodicTask.objects.get(pk=task.pk)
    entry = ModelEntry(row, app=celery_app)  # type: ignore[no-untyped-call]
    return bool(entry.is_due()[0])  # type: ignore[no-untyped-call]


# --- services ------------------------------------------------------------------------------


def test_the_default_needs_no_row_and_a_change_is_stored_and_audited(boss: Actor) -> None:
    task = services.schedule_save(hourly(), actor=boss)
    assert missed_runs_of(task) == MissedRuns("run_once", 10)
    assert not ScheduleOptions.objects.exists()

    services.schedule_save(
        with_missed(definition_of(task), MissedRuns("run_all", 25)), actor=boss, task=task
    )

    assert missed_runs_of(task) == MissedRuns("run_all", 25)
    edit = AuditEntry.objects.get(action="schedule.edit")
    assert edit.details["before"] == {"missed_policy": "run_once", "missed_cap": 10}
    assert edit.details["after"] == {"missed_policy": "run_all", "missed_cap": 25}
    # A plain definition (no policy) leaves the stored one be.
    services.schedule_save(replace(definition_of(task), description="x"), actor=boss, task=task)
    assert missed_runs_of(task) == MissedRuns("run_all", 25)


@pytest.mark.parametrize(
    ("missed", "field"),
    [
        (MissedRuns("sometimes", 10), "missed_policy"),
        (MissedRuns("run_all", 0), "missed_cap"),
        (MissedRuns("run_all", 1001), "missed_cap"),
    ],
)
def test_a_bad_policy_is_refused_naming_the_field(
    boss: Actor, missed: MissedRuns, field: str
) -> None:
    with pytest.raises(services.InvalidSchedule) as caught:
        services.schedule_save(with_missed(hourly(), missed), actor=boss)
    assert field in caught.value.errors
    assert not PeriodicTask.objects.filter(name="hourly report").exists()


def test_pausing_keeps_the_last_run_so_resuming_catches_up(boss: Actor) -> None:
    """Paused across fire times, then resumed: beat finds the schedule due at once and
    applies its policy; under skip it counts from now, as resuming did before."""
    catch_up = services.schedule_save(hourly("catch up"), actor=boss)
    skip = services.schedule_save(with_missed(hourly("skip"), MissedRuns("skip", 10)), actor=boss)
    ids = [catch_up.pk, skip.pk]
    fired = timezone.now() - timedelta(hours=3)
    PeriodicTask.objects.filter(pk__in=ids).update(last_run_at=fired)

    services.schedules_toggle(ids, actor=boss, enabled=False)
    assert set(PeriodicTask.objects.filter(pk__in=ids).values_list("last_run_at", flat=True)) == {
        fired
    }
    services.schedules_toggle(ids, actor=boss, enabled=True)

    assert PeriodicTask.objects.get(pk=catch_up.pk).last_run_at == fired
    assert beat_due(catch_up)
    assert PeriodicTask.objects.get(pk=skip.pk).last_run_at is None  # counts from now
    assert not beat_due(skip)
    resume = AuditEntry.objects.filter(action="schedule.resume", target_id=str(catch_up.pk))
    assert resume.get().details["missed_runs"] == "Run once for all missed runs"


def test_pausing_and_resuming_in_the_editor_keeps_the_last_run_too(boss: Actor) -> None:
    task = services.schedule_save(hourly(), actor=boss)
    fired = timezone.now() - timedelta(hours=3)
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=fired)
    task.refresh_from_db()

    task = services.schedule_save(
        replace(definition_of(task), enabled=False), actor=boss, task=task
    )
    assert PeriodicTask.objects.get(pk=task.pk).last_run_at == fired
    task = services.schedule_save(replace(definition_of(task), enabled=True), actor=boss, task=task)
    assert PeriodicTask.objects.get(pk=task.pk).last_run_at == fired
    assert beat_due(task)

    # Resumed with a new timing: the old last run says nothing about it, so it counts from now.
    task = services.schedule_save(
        replace(definition_of(task), enabled=False), actor=boss, task=task
    )
    every_day = Timing(Kind.INTERVAL, every=1, period="days")
    task = services.schedule_save(
        replace(definition_of(task), enabled=True, timing=every_day), actor=boss, task=task
    )
    assert not beat_due(task)


def test_the_policy_of_a_declared_schedule_is_not_an_edit_and_survives_reset(
    boss: Actor,
) -> None:
    reaper = PeriodicTask.objects.get(name=declared.REAPER)
    services.schedule_save(
        with_missed(definition_of(reaper), MissedRuns("skip", 10)), actor=boss, task=reaper
    )
    reaper.refresh_from_db()

    assert not is_edited(reaper, reaper.declaration)
    services.schedule_reset(reaper, actor=boss)
    declared.sync_declared_schedules(celery_app)
    assert missed_runs_of(reaper) == MissedRuns("skip", 10)


# --- the dashboard's editor ----------------------------------------------------------------


def editor_post(**overrides: str) -> dict[str, str]:
    data = {
        "name": "weekday report", "job": "demo.progress", "kind": "interval", "every": "1",
        "period": "hours", "timezone": "UTC", "enabled": "on", "param-steps": "7",
        "param-step_seconds": "0.5", "missed_policy": "run_all", "missed_cap": "3",
    }  # fmt: skip
    data.update(overrides)
    return data


def test_the_editor_sets_and_shows_the_policy(client: Client, boss_user: User) -> None:
    client.force_login(boss_user)
    response = client.post(reverse("tasks_app:schedule_new"), editor_post())
    assert response.status_code == 302, response.content.decode()[:2000]
    task = PeriodicTask.objects.get(name="weekday report")
    assert missed_runs_of(task) == MissedRuns("run_all", 3)

    page = client.get(reverse("tasks_app:schedule_edit", args=[task.pk])).content.decode()
    assert '<option value="run_all" selected>' in page
    assert 'name="missed_cap" value="3"' in page

    # A client that posts neither field keeps the stored policy.
    data = {k: v for k, v in editor_post().items() if not k.startswith("missed_")}
    client.post(reverse("tasks_app:schedule_edit", args=[task.pk]), data)
    assert missed_runs_of(task) == MissedRuns("run_all", 3)


@pytest.mark.parametrize(
    ("field", "value"), [("missed_cap", "0"), ("missed_cap", "many"), ("missed_policy", "x")]
)
def test_the_editor_shows_a_bad_policy_inline(
    client: Client, boss_user: User, field: str, value: str
) -> None:
    client.force_login(boss_user)
    response = client.post(reverse("tasks_app:schedule_new"), editor_post(**{field: value}))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not PeriodicTask.objects.filter(name="weekday report").exists()


# --- the Django admin ----------------------------------------------------------------------


def admin_post(task: PeriodicTask, **changes: str) -> dict[str, str]:
    data = {
        "name": task.name, "job": "demo.progress", "enabled": "on", "description": "",
        "interval": str(task.interval_id), "crontab": "", "solar": "", "clocked": "",
        "start_time_0": "", "start_time_1": "", "expires_0": "", "expires_1": "",
        "expire_seconds": "", "queue": "", "priority": "",
        "param-steps": "7", "param-step_seconds": "0.5",
        "missed_policy": "skip", "missed_cap": "10",
    }  # fmt: skip
    data.update(changes)
    return data


def test_the_admin_edits_the_policy_through_the_services(
    client: Client, boss_user: User, boss: Actor
) -> None:
    task = services.schedule_save(hourly(), actor=boss)
    client.force_login(boss_user)
    url = reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
    assert 'name="missed_policy"' in client.get(url).content.decode()

    response = client.post(url, admin_post(task))
    assert response.status_code == 302
    assert missed_runs_of(task) == MissedRuns("skip", 10)
    assert AuditEntry.objects.filter(action="schedule.edit", actor_label="boss").exists()

    refused = client.post(url, admin_post(task, missed_policy="run_all", missed_cap="5000"))
    assert refused.status_code == 200
    assert "missed_cap" in refused.context["adminform"].form.errors
    assert missed_runs_of(task) == MissedRuns("skip", 10)


# --- the API -------------------------------------------------------------------------------


def api_call(client: Client, raw: str, method: str, path: str, body: Any = None) -> Any:
    call = getattr(client, method)
    headers = {"Authorization": f"Bearer {raw}"}
    if body is None:
        return call(API + path, headers=headers)
    return call(API + path, json.dumps(body), content_type="application/json", headers=headers)


def test_the_api_creates_changes_and_reads_the_policy(client: Client, boss_user: User) -> None:
    raw = issue_token(boss_user, "ci")[1]
    body = {
        "name": "api hourly", "job": "demo.progress", "params": {"steps": 1},
        "timing": {"kind": "interval", "every": 1, "period": "hours"},
        "missed_policy": "run_all", "missed_cap": 4,
    }  # fmt: skip
    created = api_call(client, raw, "post", "/schedules", body)
    assert created.status_code == 201, created.content
    out = created.json()
    assert (out["missed_policy"], out["missed_cap"]) == ("run_all", 4)

    changed = api_call(client, raw, "patch", f"/schedules/{out['id']}", {"missed_cap": 7})
    assert changed.status_code == 200, changed.content
    assert (changed.json()["missed_policy"], changed.json()["missed_cap"]) == ("run_all", 7)
    listed = api_call(client, raw, "get", "/schedules").json()["items"]
    assert {(s["name"], s["missed_policy"], s["missed_cap"]) for s in listed} >= {
        ("api hourly", "run_all", 7)
    }
    plain = api_call(
        client,
        raw,
        "post",
        "/schedules",
        {**body, "name": "defaults"} | {"missed_policy": "run_once", "missed_cap": 10},
    )
    assert plain.json()["missed_policy"] == "run_once"


@pytest.mark.parametrize(
    ("field", "value"), [("missed_policy", "often"), ("missed_cap", 0), ("missed_cap", 1001)]
)
def test_the_api_refuses_a_bad_policy_naming_the_field(
    client: Client, boss_user: User, boss: Actor, field: str, value: Any
) -> None:
    raw = issue_token(boss_user, "ci")[1]
    task = services.schedule_save(hourly(), actor=boss)
    body = {
        "name": "api hourly", "job": "demo.progress",
        "timing": {"kind": "interval", "every": 1, "period": "hours"}, field: value,
    }  # fmt: skip

    created = api_call(client, raw, "post", "/schedules", body)
    changed = api_call(client, raw, "patch", f"/schedules/{task.pk}", {field: value})

    for response in (created, changed):
        assert response.status_code == 400, response.content
        assert field in response.json()["errors"], response.json()
    assert missed_runs_of(task) == MissedRuns("run_once", 10)


# --- a one-off beat missed -----------------------------------------------------------------


def test_a_missed_one_off_is_retired_unsent_under_skip(boss: Actor) -> None:
    """Beat's own entry for a one-off whose time passed while beat was down: under skip,
    nothing is sent, the decision is audited, and beat retires the schedule as if it ran."""
    at = timezone.now() + timedelta(minutes=5)
    once = Timing(Kind.ONE_OFF, run_at=at, timezone="UTC")
    task = services.schedule_save(
        with_missed(hourly("once", timing=once), MissedRuns("skip", 10)), actor=boss
    )
    assert task.clocked is not None
    ClockedSchedule.objects.filter(pk=task.clocked.pk).update(
        clocked_time=timezone.now() - timedelta(minutes=10)
    )  # beat was down when its time came
    # Neither synced nor closed: both close the database connection.
    scheduler = TaskdeckScheduler(app=celery_app, lazy=True)
    entry = ModelEntry(PeriodicTask.objects.get(pk=task.pk), app=celery_app)  # type: ignore[no-untyped-call]
    assert entry.is_due()[0]  # type: ignore[no-untyped-call]
    following = scheduler.reserve(entry)  # type: ignore[no-untyped-call]
    scheduler.apply_entry(entry)
    # Beat's next look at it retires it (and saves the row).
    assert following.is_due()[0] is False

    assert not Run.objects.filter(schedule_name="once").exists()
    decided = AuditEntry.objects.get(action="schedule.missed_skip", target_id=str(task.pk))
    assert decided.actor_label == "beat"
    assert decided.details["sent"] == []
    assert decided.details["missed"] == 1
    assert not PeriodicTask.objects.get(pk=task.pk).enabled  # done: beat retired it
