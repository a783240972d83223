"""The schedule pages through the test client: list, detail, editor with inline errors and the
htmx preview and parameter form, pause/resume, bulk actions, Run now, delete, permissions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from tasks_app import services
from tasks_app.jobs.sealing import unseal
from tasks_app.models import AuditEntry, Run, RunSource, RunState
from tasks_app.schedules.declared import REAPER
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing
from tasks_app.services import Actor

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def boss_user() -> User:
    return User.objects.create_superuser("boss", password="x-Secret-123")


@pytest.fixture
def boss(client: Client, boss_user: User) -> Client:
    client.force_login(boss_user)
    return client


@pytest.fixture
def viewer(client: Client) -> Client:
    client.force_login(User.objects.create_user("viewer", password="x-Secret-123", is_staff=True))
    return client


def make_schedule(
    name: str = "nightly", job: str = "demo.progress", **params: object
) -> PeriodicTask:
    owner, _ = User.objects.get_or_create(username="owner", defaults={"is_superuser": True})
    definition = ScheduleDefinition(
        name=name,
        job=job,
        timing=Timing(Kind.CRONTAB, cron="30 2 * * 1-5", timezone="Europe/Berlin"),
        params=dict(params) or {"steps": 5},
    )
    return services.schedule_save(definition, actor=Actor(user=owner))


def editor_post(**overrides: str) -> dict[str, str]:
    data = {
        "name": "weekday report",
        "job": "demo.progress",
        "kind": "crontab",
        "cron": "30 2 * * 1-5",
        "timezone": "Europe/Berlin",
        "period": "minutes",
        "enabled": "on",
        "param-steps": "7",
        "param-step_seconds": "0.5",
    }
    data.update(overrides)
    return data


def test_list_shows_words_zone_next_times_last_run_and_markers(boss: Client) -> None:
    task = make_schedule()
    Run.objects.create(
        task_id="sched-run-1", job_name="demo.progress", state=RunState.FAILURE,
        queued_at=timezone.now(), schedule_name=task.name, source=RunSource.SCHEDULE,
    )  # fmt: skip

    html = boss.get(reverse("tasks_app:schedules")).content.decode()

    assert "nightly" in html
    assert "At 02:30, Monday through Friday (Europe/Berlin)" in html
    assert "CET" in html or "CEST" in html  # next fire times in the schedule's zone
    assert "Failed" in html  # last run with its state
    assert REAPER in html
    assert "built in" in html
    assert "Run now" in html
    assert 'role="switch"' in html


def test_detail_lists_recent_runs_and_changes(boss: Client) -> None:
    task = make_schedule()
    Run.objects.create(
        task_id="sched-run-2", job_name="demo.progress", state=RunState.SUCCESS,
        queued_at=timezone.now(), schedule_name=task.name, source=RunSource.SCHEDULE,
    )  # fmt: skip

    html = boss.get(reverse("tasks_app:schedule", args=[task.pk])).content.decode()

    assert "sched-run-2"[:13] in html
    assert "schedule.create" in html
    assert "Next fire times" in html


def test_a_housekeeping_schedule_says_why_it_lists_no_runs(boss: Client) -> None:
    reaper = PeriodicTask.objects.get(name=REAPER)
    html = boss.get(reverse("tasks_app:schedule", args=[reaper.pk])).content.decode()
    assert "runs are not recorded as runs" in html
    assert "No runs yet." not in html


def test_create_from_the_jobs_form_stores_json_kwargs(boss: Client) -> None:
    response = boss.post(reverse("tasks_app:schedule_new"), editor_post())

    task = PeriodicTask.objects.get(name="weekday report")
    assert response.status_code == 302
    assert response["Location"] == reverse("tasks_app:schedule", args=[task.pk])
    assert json.loads(task.kwargs) == {"steps": 7, "step_seconds": 0.5}
    assert task.crontab is not None
    assert str(task.crontab.timezone) == "Europe/Berlin"
    assert AuditEntry.objects.filter(action="schedule.create", actor_label="boss").exists()


@pytest.mark.parametrize(
    ("overrides", "field_error"),
    [
        ({"cron": "0 0 31 2 *"}, "never fires"),
        ({"cron": "61 * * * *"}, "minute"),
        ({"cron": ""}, "Give a cron expression"),
        ({"param-steps": "0"}, "greater than or equal to 1"),
        ({"job": ""}, "This field is required"),
        ({"kind": "interval", "every": ""}, "Give how many"),
        ({"kind": "one_off", "run_at": ""}, "Give the date and time"),
        ({"kind": "one_off", "run_at": "2020-01-01T10:00"}, "Must be in the future"),
    ],
)
def test_bad_input_shows_inline_errors_keeps_input_and_saves_nothing(
    boss: Client, overrides: dict[str, str], field_error: str
) -> None:
    response = boss.post(reverse("tasks_app:schedule_new"), editor_post(**overrides))

    assert response.status_code == 400
    html = response.content.decode()
    assert field_error in html
    assert "weekday report" in html  # what was typed is kept
    assert not PeriodicTask.objects.filter(name="weekday report").exists()


def test_interval_and_one_off_schedules(boss: Client) -> None:
    boss.post(
        reverse("tasks_app:schedule_new"),
        editor_post(name="every 5", kind="interval", every="5", period="minutes", cron=""),
    )
    at = (timezone.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    boss.post(
        reverse("tasks_app:schedule_new"),
        editor_post(name="once", kind="one_off", run_at=at, timezone="UTC", cron=""),
    )

    every = PeriodicTask.objects.get(name="every 5")
    once = PeriodicTask.objects.get(name="once")
    assert every.interval is not None
    assert (every.interval.every, every.interval.period) == (5, "minutes")
    assert once.clocked is not None
    assert once.one_off is True


def test_times_are_read_in_the_schedules_zone(boss: Client) -> None:
    boss.post(
        reverse("tasks_app:schedule_new"),
        editor_post(start_time="2031-07-01T09:00", timezone="America/New_York"),
    )
    task = PeriodicTask.objects.get(name="weekday report")
    assert task.start_time is not None
    assert task.start_time.astimezone(UTC).hour == 13  # 09:00 EDT


def test_preview_describes_and_lists_five_times_in_the_zone(boss: Client) -> None:
    response = boss.get(
        reverse("tasks_app:schedule_preview"),
        {"kind": "crontab", "cron": "30 2 * * 1-5", "timezone": "Europe/Berlin"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # just the region
    assert "At 02:30, Monday through Friday" in html
    assert html.count("<li>") == 5


def test_preview_notes_a_daylight_saving_change_among_the_fire_times(boss: Client) -> None:
    # Three days before Berlin's clocks go forward: 02:30 does not exist on 29 March.
    with time_machine.travel(datetime(2026, 3, 26, 12, 0, tzinfo=UTC), tick=False):
        response = boss.get(
            reverse("tasks_app:schedule_preview"),
            {"kind": "crontab", "cron": "30 2 * * *", "timezone": "Europe/Berlin"},
            headers={"HX-Request": "true"},
        )
    html = response.content.decode()
    assert response.status_code == 200
    assert "clocks go forward on 29 Mar 2026" in html
    assert html.count("<li") == 5


def test_preview_names_the_broken_field(boss: Client) -> None:
    response = boss.get(
        reverse("tasks_app:schedule_preview"),
        {"kind": "crontab", "cron": "0 0 31 2 *", "timezone": "UTC"},
    )
    assert "never fires" in response.content.decode()


def test_choosing_a_job_swaps_in_its_parameter_fields(boss: Client) -> None:
    html = boss.get(reverse("tasks_app:schedule_params"), {"job": "demo.flaky"}).content.decode()
    assert 'name="param-failure_rate"' in html
    assert 'name="param-steps"' not in html


def test_edit_never_sends_a_secret_and_keeps_it_when_left_empty(boss: Client) -> None:
    task = make_schedule("secret", job="demo.sensitive", password="hunter2-x", label="a")

    page = boss.get(reverse("tasks_app:schedule_edit", args=[task.pk])).content.decode()
    assert "hunter2-x" not in page
    detail = boss.get(reverse("tasks_app:schedule", args=[task.pk])).content.decode()
    assert "hunter2-x" not in detail

    data = editor_post(name="secret", job="demo.sensitive")
    data.pop("param-steps")
    data.pop("param-step_seconds")
    data.update({"param-password": "", "param-label": "b"})
    response = boss.post(reverse("tasks_app:schedule_edit", args=[task.pk]), data)

    assert response.status_code == 302
    task.refresh_from_db()
    assert "hunter2-x" not in task.kwargs  # sealed at rest
    assert unseal(json.loads(task.kwargs)["password"]) == "hunter2-x"
    assert json.loads(task.kwargs)["label"] == "b"


def test_toggle_bulk_and_run_now(boss: Client, broker: str) -> None:
    a, b = make_schedule("a"), make_schedule("b")

    boss.post(reverse("tasks_app:schedule_toggle", args=[a.pk]), {"enabled": "0"})
    a.refresh_from_db()
    assert a.enabled is False

    boss.post(reverse("tasks_app:schedules_bulk"), {"action": "disable", "schedule": [b.pk]})
    b.refresh_from_db()
    assert b.enabled is False
    boss.post(reverse("tasks_app:schedules_bulk"), {"action": "enable", "schedule": [a.pk, b.pk]})
    assert PeriodicTask.objects.filter(pk__in=[a.pk, b.pk], enabled=True).count() == 2

    response = boss.post(reverse("tasks_app:schedule_run", args=[a.pk]))
    run = Run.objects.get(schedule_name="a")
    assert response["Location"] == reverse("tasks_app:run", args=[run.task_id])
    assert run.source == RunSource.SCHEDULE
    assert run.params == {"steps": 5, "step_seconds": 0.1}


def test_delete_asks_first_then_deletes(boss: Client) -> None:
    task = make_schedule()
    assert (
        "Delete schedule"
        in boss.get(reverse("tasks_app:schedule_delete", args=[task.pk])).content.decode()
    )
    boss.post(reverse("tasks_app:schedule_delete", args=[task.pk]))
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


def test_declared_schedule_cannot_be_deleted_from_the_page(boss: Client) -> None:
    task = PeriodicTask.objects.get(name=REAPER)
    response = boss.post(reverse("tasks_app:schedule_delete", args=[task.pk]), follow=True)
    assert "declared in code" in response.content.decode()
    assert PeriodicTask.objects.filter(pk=task.pk).exists()


def test_viewer_sees_no_actions_and_is_refused(viewer: Client) -> None:
    task = make_schedule()
    html = viewer.get(reverse("tasks_app:schedules")).content.decode()
    assert "New schedule" not in html
    assert "Run now" not in html
    assert viewer.get(reverse("tasks_app:schedule_new")).status_code == 403
    assert viewer.post(reverse("tasks_app:schedule_toggle", args=[task.pk])).status_code == 403
    assert viewer.post(reverse("tasks_app:schedule_run", args=[task.pk])).status_code == 403
    assert viewer.post(reverse("tasks_app:schedule_delete", args=[task.pk])).status_code == 403
    assert PeriodicTask.objects.get(pk=task.pk).enabled is True


def test_permission_through_a_group_is_enough(client: Client) -> None:
    user = User.objects.create_user("ops", password="x-Secret-123", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="manage_schedules"))
    client.force_login(user)
    response = client.post(reverse("tasks_app:schedule_new"), editor_post())
    assert response.status_code == 302


def test_hostile_names_and_descriptions_are_escaped(boss: Client) -> None:
    boss.post(reverse("tasks_app:schedule_new"), editor_post(name=HOSTILE, description=HOSTILE))
    task = PeriodicTask.objects.get(name=HOSTILE)
    for url in (
        reverse("tasks_app:schedules"),
        reverse("tasks_app:schedule", args=[task.pk]),
        reverse("tasks_app:schedule_edit", args=[task.pk]),
        reverse("tasks_app:audit"),
    ):
        html = boss.get(url).content.decode()
        assert HOSTILE not in html, url


def test_a_run_links_to_the_schedule_that_fired_it(boss: Client) -> None:
    task = make_schedule()
    Run.objects.create(
        task_id="sched-run-3", job_name="demo.progress", state=RunState.SUCCESS,
        queued_at=timezone.now(), schedule_name=task.name, source=RunSource.SCHEDULE,
    )  # fmt: skip
    html = boss.get(reverse("tasks_app:run", args=["sched-run-3"])).content.decode()
    assert reverse("tasks_app:schedule", args=[task.pk]) in html


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"day_of_month": "30", "month_of_year": "2"}, "never"),  # 30 February
        ({"day_of_week": "7"}, "day_of_week"),  # stock beat's validator takes 7 for Sunday
    ],
)
def test_a_crontab_the_parser_refuses_shows_why_it_cannot_be_forecast(
    boss: Client, fields: dict[str, str], reason: str
) -> None:
    """Such rows come from older data or other tools; the pages must still answer."""
    values = {"minute": "0", "hour": "0", "day_of_month": "*", "month_of_year": "*"}
    values["day_of_week"] = "*"
    crontab = CrontabSchedule.objects.create(**{**values, **fields}, timezone="UTC")
    task = PeriodicTask.objects.create(name="odd", task="demo.progress", crontab=crontab)

    for url in (
        reverse("tasks_app:schedules"),
        reverse("tasks_app:schedule", args=[task.pk]),
        reverse("tasks_app:schedule_edit", args=[task.pk]),
    ):
        response = boss.get(url)
        html = response.content.decode()
        assert response.status_code == 200, url
        assert "Cannot forecast: " in html, url
        forecast_line = html.split("Cannot forecast: ", 1)[1].split("<", 1)[0]
        assert reason in forecast_line, (url, forecast_line)


def test_a_non_ascii_digit_schedule_id_is_ignored(boss: Client) -> None:
    for pk in ("²", "١٢", "9" * 40):  # str.isdigit() takes the first two, int() not "²"
        response = boss.get(
            reverse("tasks_app:schedule_params"), {"job": "demo.progress", "schedule": pk}
        )
        assert response.status_code == 200
        assert 'name="param-steps"' in response.content.decode()


def test_the_list_shows_each_schedules_time_zone(boss: Client, settings: Any) -> None:
    make_schedule()  # a crontab in Europe/Berlin
    every = ScheduleDefinition(
        name="often", job="demo.progress", timing=Timing(Kind.INTERVAL, every=5)
    )
    services.schedule_save(every, actor=Actor(user=User.objects.get(username="owner")))

    html = boss.get(reverse("tasks_app:schedules")).content.decode()

    assert '<th scope="col">Time zone</th>' in html
    rows = {row.split("</a>", 1)[0].rsplit(">", 1)[-1]: row for row in html.split("<tr")[1:]}
    assert ">Europe/Berlin</td>" in rows["nightly"]
    assert f">{settings.TIME_ZONE}</td>" in rows["often"]  # where its times are shown
