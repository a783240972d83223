"""The PeriodicTask admin: the job chooser and the job's parameter form instead of raw JSON
(raw JSON only for superusers, on plain Celery tasks), and every write through the services:
permission checks, the audit trail with before and after, beat's change marker, Run now."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
    SolarSchedule,
)
from django_celery_beat.schedulers import ModelEntry

from dashboard.celery import app as celery_app
from tasks_app import services
from tasks_app.jobs.sealing import unseal
from tasks_app.models import AuditEntry, Run, RunSource, RunState
from tasks_app.schedules import declared
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing
from tasks_app.services import Actor

pytestmark = pytest.mark.django_db

ADD = reverse("admin:django_celery_beat_periodictask_add")
LIST = reverse("admin:django_celery_beat_periodictask_changelist")
BEAT_PERMS = ("add_periodictask", "change_periodictask", "view_periodictask", "delete_periodictask")


def change_url(task: PeriodicTask) -> str:
    return reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])


def staff_user(username: str = "ops", *, manage: bool = True) -> User:
    user = User.objects.create_user(username, password="x-Secret-123", is_staff=True)
    codenames = [*BEAT_PERMS, "launch_job"] + (["manage_schedules"] if manage else [])
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def ops(client: Client) -> Client:
    client.force_login(staff_user())
    return client


@pytest.fixture
def boss(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("boss", password="x-Secret-123"))
    return client


def every_five_minutes() -> IntervalSchedule:
    return IntervalSchedule.objects.get_or_create(every=5, period=IntervalSchedule.MINUTES)[0]


def job_form(**changes: str) -> dict[str, str]:
    """The admin form's POST for a schedule of demo.progress every five minutes."""
    data = {
        "name": "nightly", "job": "demo.progress", "enabled": "on", "description": "",
        "interval": str(every_five_minutes().pk), "crontab": "", "solar": "", "clocked": "",
        "start_time_0": "", "start_time_1": "", "one_off": "", "expires_0": "", "expires_1": "",
        "expire_seconds": "", "queue": "", "priority": "",
        "param-steps": "7", "param-step_seconds": "0.5",
    }  # fmt: skip
    data.update(changes)
    return {k: v for k, v in data.items() if not (k == "one_off" and not v)}


def saved_schedule(name: str = "nightly", **changes: Any) -> PeriodicTask:
    actor = Actor(user=User.objects.create_superuser(f"maker-{name}", password="x-Secret-123"))
    definition = ScheduleDefinition(
        name=name,
        job="demo.progress",
        timing=Timing(Kind.CRONTAB, cron="30 2 * * 1-5", timezone="UTC"),
        params={"steps": 5},
        **changes,
    )
    return services.schedule_save(definition, actor=actor)


def plain_schedule() -> PeriodicTask:
    return PeriodicTask.objects.create(
        name="adder", task="demo.add", interval=every_five_minutes(), kwargs='{"x": 1, "y": 2}'
    )


def message_texts(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def params_errors(response: Any) -> dict[str, Any]:
    return dict(response.context["adminform"].form.params_form.errors)


# --- the form ------------------------------------------------------------------------------


def test_the_add_page_offers_the_job_chooser_not_raw_json(ops: Client) -> None:
    page = ops.get(ADD)

    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="job"' in html
    assert 'hx-get="/schedules/params/"' in html
    assert 'hx-target="#job-params"' in html
    assert 'id="job-params"' in html
    assert "django_htmx/htmx" in html  # the script django-htmx serves
    assert '<option value="demo.progress">' in html
    assert "demo.add" not in html  # a plain Celery task, not a registered job
    for raw in ('name="kwargs"', 'name="args"', 'name="task"', 'name="regtask"'):
        assert raw not in html
    assert 'name="routing_key"' not in html  # low-level AMQP options: superusers only
    assert "plain=1" not in html


def test_choosing_a_job_shows_its_parameter_fields(ops: Client) -> None:
    chosen = ops.get(ADD, {"job": "demo.progress"})
    assert 'name="param-steps"' in chosen.content.decode()

    # htmx swaps the same fields in when the chooser changes.
    swapped = ops.get(
        reverse("tasks_app:schedule_params"), {"job": "demo.progress"}, HTTP_HX_REQUEST="true"
    )
    assert swapped.status_code == 200
    assert 'name="param-step_seconds"' in swapped.content.decode()

    # A POST that fails for another reason shows the chosen job's fields with what was typed.
    posted = ops.post(ADD, job_form(name="", **{"param-steps": "42"}))
    assert posted.status_code == 200
    assert 'name="param-steps"' in posted.content.decode()
    assert 'value="42"' in posted.content.decode()


def test_an_invalid_parameter_is_shown_on_its_field_and_nothing_is_saved(ops: Client) -> None:
    response = ops.post(ADD, job_form(**{"param-steps": "0"}))

    assert response.status_code == 200
    assert "steps" in params_errors(response)
    html = response.content.decode()
    assert 'id="id_param-steps_error"' in html
    assert "Correct the job&#x27;s parameters below." in html
    assert not PeriodicTask.objects.filter(name="nightly").exists()
    assert not AuditEntry.objects.filter(action__startswith="schedule.").exists()


def test_a_valid_post_stores_the_jobs_json_kwargs_and_audits_the_creation(ops: Client) -> None:
    response = ops.post(ADD, job_form(queue="low"))

    assert response.status_code == 302, response.content.decode()
    task = PeriodicTask.objects.get(name="nightly")
    assert task.task == "demo.progress"
    assert json.loads(task.kwargs) == {"steps": 7, "step_seconds": 0.5}
    assert json.loads(task.args) == []
    assert task.interval == every_five_minutes()
    assert task.queue == "low"
    entry = AuditEntry.objects.get(action="schedule.create")
    assert entry.actor_label == "ops"
    assert (entry.target_type, entry.target_id) == ("schedule", str(task.pk))
    assert entry.details["before"] is None
    assert entry.details["after"]["job"] == "demo.progress"
    assert entry.details["after"]["params"] == {"steps": 7, "step_seconds": 0.5}
    assert entry.details["after"]["schedule"] == "Every 5 minutes"


def test_a_change_is_audited_with_before_and_after(ops: Client) -> None:
    task = saved_schedule()
    crontab = task.crontab
    assert crontab is not None

    page = ops.get(change_url(task))
    html = page.content.decode()
    assert '<option value="demo.progress" selected>' in html
    assert 'name="param-steps" value="5"' in html
    assert f'hx-get="/schedules/params/?schedule={task.pk}"' in html

    form = job_form(interval="", crontab=str(crontab.pk), **{"param-steps": "9"})
    response = ops.post(change_url(task), form)

    assert response.status_code == 302, response.content.decode()
    task.refresh_from_db()
    assert json.loads(task.kwargs) == {"steps": 9, "step_seconds": 0.5}
    entry = AuditEntry.objects.get(action="schedule.edit")
    assert entry.actor_label == "ops"
    assert entry.details["before"] == {"params": {"steps": 5, "step_seconds": 0.1}}
    assert entry.details["after"] == {"params": {"steps": 9, "step_seconds": 0.5}}


def test_the_services_rules_show_on_the_fields(ops: Client) -> None:
    response = ops.post(ADD, job_form(priority="12"))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["priority"] == ["Priority must be between 0 and 9."]
    assert not PeriodicTask.objects.filter(name="nightly").exists()


def test_a_declared_schedule_keeps_its_name(boss: Client) -> None:
    reaper = PeriodicTask.objects.get(name=declared.REAPER)
    interval = str(reaper.interval_id)
    form = job_form(name="renamed", job=reaper.task, interval=interval)

    response = boss.post(change_url(reaper), form)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "keeps its name" in errors["name"][0]
    assert PeriodicTask.objects.filter(name=declared.REAPER).exists()


def test_a_sensitive_parameter_is_never_shown_and_kept_when_left_empty(ops: Client) -> None:
    task = saved_schedule(name="secret")
    task.task, task.kwargs = "demo.sensitive", json.dumps({"password": "hunter2-x", "label": "a"})
    task.save()  # type: ignore[no-untyped-call]

    page = ops.get(change_url(task))
    assert "hunter2-x" not in page.content.decode()

    crontab = str(task.crontab_id)
    form = job_form(name="secret", job="demo.sensitive", interval="", crontab=crontab)
    form.update({"param-password": "", "param-label": "b"})
    response = ops.post(change_url(task), form)

    assert response.status_code == 302, response.content.decode()
    task.refresh_from_db()
    assert "hunter2-x" not in task.kwargs  # sealed at rest
    assert unseal(json.loads(task.kwargs)["password"]) == "hunter2-x"
    assert json.loads(task.kwargs)["label"] == "b"
    entry = AuditEntry.objects.get(action="schedule.edit")
    assert "hunter2-x" not in json.dumps(entry.details)


# --- plain Celery tasks ----------------------------------------------------------------------


def plain_form(**changes: str) -> dict[str, str]:
    data = {
        "name": "adder", "regtask": "", "task": "demo.add", "enabled": "on", "description": "",
        "interval": str(every_five_minutes().pk), "crontab": "", "solar": "", "clocked": "",
        "start_time_0": "", "start_time_1": "", "args": "[]", "kwargs": '{"x": 5, "y": 2}',
        "expires_0": "", "expires_1": "", "expire_seconds": "", "queue": "", "exchange": "",
        "routing_key": "", "priority": "", "headers": "{}",
    }  # fmt: skip
    data.update(changes)
    return data


def test_a_superuser_edits_a_plain_tasks_raw_json(boss: Client) -> None:
    task = plain_schedule()

    page = boss.get(change_url(task))
    html = page.content.decode()
    assert 'name="kwargs"' in html
    assert 'name="job"' not in html

    response = boss.post(change_url(task), plain_form())

    assert response.status_code == 302, response.content.decode()
    task.refresh_from_db()
    assert json.loads(task.kwargs) == {"x": 5, "y": 2}
    entry = AuditEntry.objects.get(action="schedule.edit")
    assert entry.actor_label == "boss"
    assert entry.details["before"] == {"params": {"x": 1, "y": 2}}
    assert entry.details["after"] == {"params": {"x": 5, "y": 2}}


def test_a_superuser_may_add_a_plain_task_schedule_on_request(boss: Client) -> None:
    assert "plain=1" in boss.get(ADD).content.decode()
    assert 'name="kwargs"' in boss.get(ADD, {"plain": "1"}).content.decode()

    bad = boss.post(f"{ADD}?plain=1", plain_form(kwargs="[1, 2]"))
    assert bad.status_code == 200
    errors = bad.context["adminform"].form.errors
    assert "kwargs" in errors

    response = boss.post(f"{ADD}?plain=1", plain_form())

    assert response.status_code == 302, response.content.decode()
    assert json.loads(PeriodicTask.objects.get(name="adder").kwargs) == {"x": 5, "y": 2}
    assert AuditEntry.objects.filter(action="schedule.create").exists()


def test_other_users_cannot_schedule_an_unregistered_task(ops: Client) -> None:
    assert 'name="kwargs"' not in ops.get(ADD, {"plain": "1"}).content.decode()

    response = ops.post(f"{ADD}?plain=1", {**job_form(job="demo.add"), **plain_form()})

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["job"] == ["Choose a registered job you may schedule."]
    assert not PeriodicTask.objects.filter(task="demo.add").exists()
    assert not AuditEntry.objects.exists()


def test_other_users_see_a_plain_task_read_only(ops: Client) -> None:
    task = plain_schedule()

    page = ops.get(change_url(task))

    assert page.status_code == 200
    html = page.content.decode()
    assert "only superusers can change it" in html
    assert 'name="_save"' not in html
    assert 'name="kwargs"' not in html
    assert ops.post(change_url(task), plain_form(kwargs="{}")).status_code == 403
    task.refresh_from_db()
    assert json.loads(task.kwargs) == {"x": 1, "y": 2}


def test_staff_without_the_manage_permission_are_told_why_they_can_only_look(
    client: Client,
) -> None:
    client.force_login(staff_user("viewer", manage=False))
    task = saved_schedule()

    listing = client.get(LIST)
    page = client.get(change_url(task))

    assert listing.status_code == 200
    assert any("Can manage schedules" in text for text in message_texts(listing))
    assert page.status_code == 200
    assert "Can manage schedules" in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert "&quot;steps&quot;: 5" in page.content.decode()  # the parameters, read-only
    assert client.get(ADD).status_code == 403
    assert client.post(ADD, job_form()).status_code == 403
    assert client.post(change_url(task), job_form()).status_code == 403
    assert not AuditEntry.objects.filter(actor_label="viewer").exists()


# --- actions ---------------------------------------------------------------------------------


def act(client: Client, action: str, *tasks: PeriodicTask, follow: bool = False) -> Any:
    data = {"action": action, "_selected_action": [str(t.pk) for t in tasks]}
    return client.post(LIST, data, follow=follow)


def test_enable_and_disable_go_through_the_services(ops: Client) -> None:
    a, b = saved_schedule("a"), saved_schedule("b")
    before = PeriodicTasks.last_change()  # type: ignore[no-untyped-call]

    response = act(ops, "disable_tasks", a, b)

    assert response.status_code == 302
    assert not PeriodicTask.objects.filter(pk__in=[a.pk, b.pk], enabled=True).exists()
    moved = PeriodicTasks.last_change()  # type: ignore[no-untyped-call]
    assert moved is not None
    assert before is None or moved > before
    pauses = AuditEntry.objects.filter(action="schedule.pause", actor_label="ops")
    assert {e.target_id for e in pauses} == {str(a.pk), str(b.pk)}
    assert "2 schedule(s) disabled." in message_texts(response)

    act(ops, "enable_tasks", a)
    act(ops, "toggle_tasks", b)

    assert PeriodicTask.objects.filter(pk__in=[a.pk, b.pk], enabled=True).count() == 2
    assert AuditEntry.objects.filter(action="schedule.resume").count() == 2
    latest = PeriodicTasks.last_change()  # type: ignore[no-untyped-call]
    assert latest is not None
    assert latest > moved


def test_run_selected_launches_runs_of_the_schedules(ops: Client, broker: str) -> None:
    task = saved_schedule(queue="low")
    broken = saved_schedule("broken")
    broken.kwargs = json.dumps({"steps": "many"})
    broken.save()  # type: ignore[no-untyped-call]

    response = act(ops, "run_tasks", task, broken, follow=True)

    assert response.status_code == 200
    run = Run.objects.get(schedule_name="nightly")
    assert run.source == RunSource.SCHEDULE
    assert run.actor_label == "ops"
    assert run.queue == "low"  # the schedule's queue override
    assert run.params == {"steps": 5, "step_seconds": 0.1}
    assert run.state == RunState.PENDING
    assert AuditEntry.objects.filter(action="schedule.run_now", target_id=run.task_id).exists()
    assert not Run.objects.filter(schedule_name="broken").exists()
    html = response.content.decode()
    assert "Launched 1 run(s)" in html
    assert reverse("tasks_app:run", args=[run.task_id]) in html
    assert "“broken”: its parameters are not valid for its job: steps:" in html


def test_run_selected_needs_the_launch_permission(client: Client) -> None:
    user = staff_user("planner")
    user.user_permissions.remove(Permission.objects.get(codename="launch_job"))
    client.force_login(user)
    task = saved_schedule()

    page = client.get(LIST)
    assert 'value="run_tasks"' not in page.content.decode()
    act(client, "run_tasks", task)
    assert not Run.objects.exists()


# --- deleting --------------------------------------------------------------------------------


def test_deleting_goes_through_the_service(ops: Client) -> None:
    task = saved_schedule()

    response = ops.post(
        reverse("admin:django_celery_beat_periodictask_delete", args=[task.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    entry = AuditEntry.objects.get(action="schedule.delete")
    assert entry.actor_label == "ops"
    assert entry.details["before"]["job"] == "demo.progress"


def test_a_declared_schedule_cannot_be_deleted(ops: Client) -> None:
    reaper = PeriodicTask.objects.get(name=declared.REAPER)
    other = saved_schedule()
    delete_url = reverse("admin:django_celery_beat_periodictask_delete", args=[reaper.pk])

    page = ops.get(delete_url)
    confirmed = ops.post(delete_url, {"post": "yes"})
    bulk = ops.post(
        LIST,
        {"action": "delete_selected", "_selected_action": [reaper.pk, other.pk], "post": "yes"},
    )

    for response in (page, confirmed):
        assert response.status_code == 302
        assert response["Location"] == change_url(reaper)
        assert any("Declared in code" in text for text in message_texts(response))
    assert bulk.status_code == 302
    assert any("Nothing was deleted" in text for text in message_texts(bulk))
    assert PeriodicTask.objects.filter(pk__in=[reaper.pk, other.pk]).count() == 2
    assert not AuditEntry.objects.filter(action="schedule.delete").exists()

    # The bulk action still deletes schedules that are not declared, each through the service.
    confirm = ops.post(LIST, {"action": "delete_selected", "_selected_action": [other.pk]})
    assert confirm.status_code == 200  # "are you sure?"
    ops.post(LIST, {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"})
    assert not PeriodicTask.objects.filter(pk=other.pk).exists()
    assert AuditEntry.objects.filter(action="schedule.delete", actor_label="ops").count() == 1


# --- beat's shared schedule rows -----------------------------------------------------------

ROW_MODELS = ("crontabschedule", "intervalschedule", "clockedschedule", "solarschedule")


def shared_rows() -> dict[str, Any]:
    return {
        "crontabschedule": CrontabSchedule.objects.create(minute="0", hour="4", timezone="UTC"),
        "intervalschedule": every_five_minutes(),
        "clockedschedule": ClockedSchedule.objects.create(clocked_time=timezone.now()),
        "solarschedule": SolarSchedule.objects.create(
            event="sunrise", latitude="52.5", longitude="13.4"
        ),
    }


@pytest.mark.parametrize("model", ROW_MODELS)
def test_shared_schedule_rows_cannot_be_changed_even_by_superusers(
    boss: Client, model: str
) -> None:
    """Changing (or deleting: it cascades) a shared row would change every schedule using it,
    with no service check and no audit."""
    row = shared_rows()[model]
    row.refresh_from_db()  # as stored, to compare with afterwards
    using = PeriodicTask.objects.create(
        name="user of the row",
        task="demo.add",
        one_off=model == "clockedschedule",
        **{model.removesuffix("schedule"): row},
    )
    add = reverse(f"admin:django_celery_beat_{model}_add")
    change = reverse(f"admin:django_celery_beat_{model}_change", args=[row.pk])
    delete = reverse(f"admin:django_celery_beat_{model}_delete", args=[row.pk])
    post = {"minute": "5", "hour": "*", "every": "1", "period": "days", "event": "sunset"}

    assert boss.get(add).status_code == 200  # a new row changes no schedule
    assert boss.post(change, post).status_code == 403
    assert boss.post(delete, {"post": "yes"}).status_code == 403
    # Still browsable, with the schedules that use the row.
    assert boss.get(reverse(f"admin:django_celery_beat_{model}_changelist")).status_code == 200
    page = boss.get(change)
    assert page.status_code == 200
    assert "user of the row" in page.content.decode()
    assert PeriodicTask.objects.filter(pk=using.pk).exists()
    fresh = type(row).objects.get(pk=row.pk)
    assert [getattr(fresh, f.attname) for f in fresh._meta.fields] == [
        getattr(row, f.attname) for f in row._meta.fields
    ]


def test_the_periodic_task_form_still_picks_shared_rows(ops: Client, boss: Client) -> None:
    html = ops.get(ADD).content.decode()
    assert 'name="crontab"' in html
    # A new timing row can still be added from here, by whoever may add such rows.
    assert 'id="add_id_crontab"' in boss.get(ADD).content.decode()
    response = ops.post(ADD, job_form())
    assert response.status_code == 302
    assert PeriodicTask.objects.get(name="nightly").interval == every_five_minutes()


def test_changing_the_timing_in_the_admin_forgets_the_last_run(ops: Client) -> None:
    task = saved_schedule()
    fired = timezone.now() - timedelta(days=2)
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=fired)
    form = job_form(crontab="")  # the five-minute interval instead of the crontab

    response = ops.post(change_url(task), form)

    assert response.status_code == 302
    task.refresh_from_db()
    assert task.interval == every_five_minutes()
    # Beat counts from now: not "two days since the last run, so due at once".
    entry = ModelEntry(task, app=celery_app)  # type: ignore[no-untyped-call]
    assert not entry.is_due()[0]  # type: ignore[no-untyped-call]


def test_a_superuser_cannot_schedule_a_task_celery_does_not_know(boss: Client) -> None:
    response = boss.post(f"{ADD}?plain=1", plain_form(task="made.up.task"))

    assert response.status_code == 200
    assert "made.up.task" in str(response.context["adminform"].form.errors)
    assert not PeriodicTask.objects.filter(task="made.up.task").exists()
