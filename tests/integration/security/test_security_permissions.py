"""Permissions beyond the grid (issue 11): plain Celery tasks are superusers' business whatever
the way in; a job's `permission=` guards reading its runs as well as acting on them; the
destructive built-ins need their own permissions and send_email caps its recipients; API tokens
may expire, and a password change revokes them."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from celery import current_app
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult

from tasks_app import services
from tasks_app.jobs import registry
from tasks_app.jobs.context import JobContext
from tasks_app.jobs.registry import job
from tasks_app.jobs.testing import run_job
from tasks_app.models import ApiToken, AuditEntry, Run, RunState
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing
from tasks_app.services import Actor
from tasks_app.services.tokens import token_create
from tasks_app.tokens import issue_token

pytestmark = pytest.mark.django_db

ADMIN_LIST = "/admin/django_celery_beat/periodictask/"
CRON = Timing(Kind.CRONTAB, cron="0 3 * * *", timezone="UTC")
BEAT_MODEL_PERMS = (
    "add_periodictask", "change_periodictask", "delete_periodictask", "view_periodictask",
)  # fmt: skip


def staff(username: str, *codenames: str) -> User:
    """A staff user (not superuser) with the given permission codenames ("*": every one of
    Taskdeck's, and beat's model permissions for the admin)."""
    user = User.objects.create_user(username, password="x-Secret-123", is_staff=True)
    if codenames == ("*",):
        perms = Permission.objects.filter(content_type__app_label="tasks_app") | (
            Permission.objects.filter(codename__in=BEAT_MODEL_PERMS)
        )
    else:
        perms = Permission.objects.filter(codename__in=codenames)
    user.user_permissions.add(*perms)
    return User.objects.get(pk=user.pk)  # no cached permissions


def api(client: Client, raw: str, method: str, path: str, body: Any = None) -> Any:
    return client.generic(
        method,
        f"/api/v1/{path}",
        json.dumps(body if body is not None else {}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw}"},
    )


def error_messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request) if m.level_tag == "error"]


# --- 3. plain Celery tasks: superusers only, whatever the way in ------------------------------


@pytest.fixture
def boss() -> User:
    return User.objects.create_superuser("boss", password="x-Secret-123")


@pytest.fixture
def plain_schedule(boss: User) -> PeriodicTask:
    """A schedule of `demo.add`, a plain Celery task (not a registered job), made by a
    superuser."""
    definition = ScheduleDefinition(
        name="plain adder", job="demo.add", timing=CRON, params={"x": 1, "y": 2}
    )
    return services.schedule_save(definition, actor=Actor(user=boss))


def untouched(task: PeriodicTask) -> bool:
    row = PeriodicTask.objects.filter(pk=task.pk).first()
    return (
        row is not None
        and row.enabled
        and not Run.objects.filter(schedule_name=task.name).exists()
        and not AuditEntry.objects.filter(
            action__in=["schedule.pause", "schedule.delete", "schedule.run_now"]
        ).exists()
    )


def test_a_non_superuser_with_every_permission_cannot_act_on_a_plain_tasks_schedule(
    client: Client, broker: str, plain_schedule: PeriodicTask
) -> None:
    ops = staff("ops", "*")
    raw = issue_token(ops, "ops")[1]
    client.force_login(ops)
    pk = plain_schedule.pk

    pages = [
        client.post(f"/schedules/{pk}/toggle/", {"enabled": "0"}),
        client.post("/schedules/bulk/", {"action": "disable", "schedule": [pk]}),
        client.post(f"/schedules/{pk}/delete/"),
        client.post(f"/schedules/{pk}/run/"),
    ]
    calls = [
        api(client, raw, "PATCH", f"schedules/{pk}", {"enabled": False}),
        api(client, raw, "DELETE", f"schedules/{pk}"),
        api(client, raw, "POST", f"schedules/{pk}/run"),
    ]

    assert [r.status_code for r in pages] == [403, 403, 403, 403]
    assert b"Only superusers act on tasks that are not registered jobs" in pages[0].content
    assert [r.status_code for r in calls] == [403, 403, 403]
    assert "Only superusers" in calls[0].json()["detail"]
    assert untouched(plain_schedule)


def test_the_admin_refuses_them_too(
    client: Client, broker: str, plain_schedule: PeriodicTask
) -> None:
    client.force_login(staff("ops", "*"))
    selected = {"_selected_action": [plain_schedule.pk], "index": "0"}

    toggled = client.post(ADMIN_LIST, {"action": "disable_tasks", **selected})
    ran = client.post(ADMIN_LIST, {"action": "run_tasks", **selected})
    deleted = client.post(f"{ADMIN_LIST}{plain_schedule.pk}/delete/", {"post": "yes"})

    assert any("Only superusers" in m for m in error_messages(toggled))
    assert any("Only superusers" in m for m in error_messages(ran))
    assert deleted.status_code == 403
    assert untouched(plain_schedule)


def test_a_superuser_still_acts_on_it(
    client: Client, broker: str, boss: User, plain_schedule: PeriodicTask
) -> None:
    client.force_login(boss)

    assert client.post(f"/schedules/{plain_schedule.pk}/run/").status_code == 302
    assert (
        client.post(f"/schedules/{plain_schedule.pk}/toggle/", {"enabled": "0"}).status_code == 302
    )

    assert Run.objects.filter(schedule_name="plain adder", job_name="demo.add").exists()
    assert not PeriodicTask.objects.get(pk=plain_schedule.pk).enabled


def test_a_non_superuser_cannot_edit_a_plain_tasks_schedule_into_a_job(
    plain_schedule: PeriodicTask,
) -> None:
    """Turning a superuser's plain-task schedule into one of a job is acting on it too."""
    ops = Actor(user=staff("ops", "*"))
    as_job = ScheduleDefinition(
        name="plain adder", job="demo.progress", timing=CRON, params={"steps": 1}
    )

    with pytest.raises(PermissionDenied):
        services.schedule_save(as_job, actor=ops, task=plain_schedule)

    assert PeriodicTask.objects.get(pk=plain_schedule.pk).task == "demo.add"


def plain_run(task_id: str, state: RunState) -> Run:
    now = timezone.now()
    finished = now if state == RunState.FAILURE else None
    return Run.objects.create(
        task_id=task_id, job_name="demo.add", state=state, queued_at=now, finished_at=finished,
        args=[1, 2],
    )  # fmt: skip


def test_runs_of_plain_tasks_are_retried_and_cancelled_by_superusers_only(
    client: Client, broker: str, boss: User
) -> None:
    failed = plain_run("plain-failed", RunState.FAILURE)
    queued = plain_run("plain-queued", RunState.PENDING)
    ops = staff("ops", "*")
    raw = issue_token(ops, "ops")[1]
    client.force_login(ops)

    refused = [
        client.post(f"/runs/{failed.task_id}/retry/"),
        api(client, raw, "POST", f"runs/{failed.task_id}/retry"),
        client.post(f"/runs/{queued.task_id}/cancel/"),
        api(client, raw, "POST", f"runs/{queued.task_id}/cancel", {"terminate": False}),
    ]
    bulk = api(client, raw, "POST", "runs/retry", {"task_ids": [failed.task_id]}).json()
    bulk_cancel = client.post("/runs/bulk/", {"action": "cancel", "run": [queued.pk]})

    assert [r.status_code for r in refused] == [403, 403, 403, 403]
    assert bulk["retried"] == []
    assert bulk["skipped"] == [
        {"task_id": failed.task_id, "reason": "not a registered job: superusers only"}
    ]
    assert bulk_cancel.status_code == 302
    assert not Run.objects.filter(retry_of=failed).exists()
    assert Run.objects.get(pk=queued.pk).state == RunState.PENDING
    assert Run.objects.get(pk=queued.pk).cancel_requested_at is None

    new = services.run_retry(failed, actor=Actor(user=boss))
    assert (new.retry_of_id, new.job_name, new.args) == (failed.pk, "demo.add", [1, 2])


# --- 5. a job's permission guards reading its runs ---------------------------------------------

GUARDED = "tests.secret_report"
SECRET = "the-secret-figure-4711"


@pytest.fixture
def guarded_run(settings: Any, tmp_path: Path) -> Iterator[Run]:
    """A finished run of a job that asks for `auth.change_user`, with a result-bearing error,
    a log line and a file."""
    settings.MEDIA_ROOT = tmp_path

    @job(name=GUARDED, title="Secret report", retry="no_retry", permission="auth.change_user")
    def secret_report(ctx: JobContext, team: str = "") -> None:
        """Never runs."""

    now = timezone.now()
    run = Run.objects.create(
        task_id="guarded-run", job_name=GUARDED, state=RunState.FAILURE, queued_at=now,
        finished_at=now, params={"team": SECRET}, error=f"ValueError: {SECRET}",
        log=[{"at": now.isoformat(), "message": SECRET}],
    )  # fmt: skip
    run.artifact.save("report.csv", ContentFile(SECRET.encode()))
    try:
        yield run
    finally:
        registry._REGISTRY.pop(GUARDED, None)
        current_app.tasks.pop(GUARDED, None)


def test_without_the_jobs_permission_its_run_details_are_refused(
    client: Client, guarded_run: Run
) -> None:
    viewer = staff("viewer", "launch_job", "retry_run", "cancel_run", "manage_schedules")
    raw = issue_token(viewer, "viewer")[1]
    client.force_login(viewer)
    task_id = guarded_run.task_id

    page = client.get(f"/runs/{task_id}/")
    live = client.get(f"/runs/{task_id}/", headers={"HX-Request": "true", "HX-Target": "live"})
    file = client.get(f"/runs/{task_id}/file/")
    detail = api(client, raw, "GET", f"runs/{task_id}")

    assert (page.status_code, live.status_code, file.status_code) == (403, 403, 403)
    assert b"need the permission auth.change_user" in page.content
    assert detail.status_code == 403
    assert "auth.change_user" in detail.json()["detail"]
    for response in (page, live, file, detail):
        assert SECRET.encode() not in response.content
    # The history lists the run, without its details.
    listing = client.get("/runs/")
    assert task_id.encode() in listing.content
    assert SECRET.encode() not in listing.content
    items = api(client, raw, "GET", "runs").json()["items"]
    assert [item["task_id"] for item in items] == [task_id]
    assert SECRET not in json.dumps(items)


def test_with_the_jobs_permission_they_are_shown(client: Client, guarded_run: Run) -> None:
    reader = staff("reader", "change_user")
    raw = issue_token(reader, "reader")[1]
    client.force_login(reader)

    page = client.get(f"/runs/{guarded_run.task_id}/")
    file = client.get(f"/runs/{guarded_run.task_id}/file/")
    detail = api(client, raw, "GET", f"runs/{guarded_run.task_id}")

    assert page.status_code == 200
    assert SECRET.encode() in page.content
    assert file.status_code == 200
    assert b"".join(file.streaming_content) == SECRET.encode()  # type: ignore[attr-defined]
    assert detail.status_code == 200
    assert SECRET in detail.json()["error"]


def test_the_overview_and_the_admin_hide_them_too(client: Client, guarded_run: Run) -> None:
    """The other places that show a run's details: the overview's latest failures (its error)
    and the admin's run and result pages."""
    TaskResult.objects.create(
        task_id=guarded_run.task_id, task_name=GUARDED, status="FAILURE",
        result=json.dumps({"exc_message": [SECRET]}), traceback=f"ValueError: {SECRET}",
    )  # fmt: skip
    viewer = staff("viewer", "launch_job", "view_run", "view_taskresult", "change_taskresult")
    client.force_login(viewer)
    run_page = f"/admin/tasks_app/run/{guarded_run.pk}/change/"
    result_pk = TaskResult.objects.get(task_id=guarded_run.task_id).pk
    result_page = f"/admin/django_celery_results/taskresult/{result_pk}/change/"

    overview = client.get("/")
    assert overview.status_code == 200
    assert guarded_run.task_id[:10].encode() in overview.content  # the row is listed
    assert SECRET.encode() not in overview.content
    assert b"Hidden: needs this job" in overview.content
    for path in (run_page, result_page):
        response = client.get(path)
        assert response.status_code in (302, 403), path  # the admin redirects or refuses
        assert SECRET.encode() not in response.content
    # The lists still show the rows.
    assert client.get("/admin/tasks_app/run/").status_code == 200
    assert client.get("/admin/django_celery_results/taskresult/").status_code == 200

    client.force_login(staff("reader", "change_user", "view_run", "view_taskresult"))
    assert SECRET.encode() in client.get("/").content
    for path in (run_page, result_page):
        assert SECRET.encode() in client.get(path).content, path


def test_the_overview_hides_a_restricted_active_runs_progress_message(
    client: Client, guarded_run: Run
) -> None:
    Run.objects.filter(pk=guarded_run.pk).update(
        state=RunState.STARTED, finished_at=None, progress_done=1, progress_total=3,
        progress_message=f"Reading {SECRET}",
    )  # fmt: skip
    client.force_login(staff("viewer", "launch_job"))
    for response in (
        client.get("/"),
        client.get("/", headers={"HX-Request": "true", "HX-Target": "active-runs"}),
    ):
        assert guarded_run.task_id.encode() in response.content  # listed, with its progress bar
        assert b"<progress" in response.content
        assert SECRET.encode() not in response.content
        assert b"Hidden: needs this job" in response.content

    client.force_login(staff("reader", "change_user"))
    assert f"Reading {SECRET}".encode() in client.get("/").content


def test_the_csv_export_leaves_a_restricted_jobs_error_and_parameters_out(
    guarded_run: Run,
) -> None:
    """The export is an artifact every staff user may download, whoever launched it, so the
    guarded job's details stay out of it; its row is still there."""
    Run.objects.create(
        task_id="open-run", job_name="demo.flaky", state=RunState.FAILURE,
        queued_at=timezone.now(), params={"note": "visible"}, error="ValueError: visible",
    )  # fmt: skip

    outcome = run_job("taskdeck.export_runs", states=["FAILURE"])

    [content] = outcome.store.artifacts.values()
    rows = {row["task_id"]: row for row in csv.DictReader(StringIO(content.decode()))}
    assert SECRET not in content.decode()
    assert rows[guarded_run.task_id]["error"] == rows[guarded_run.task_id]["params"]
    assert "hidden" in rows[guarded_run.task_id]["params"]
    assert rows["open-run"]["error"] == "ValueError: visible"
    assert json.loads(rows["open-run"]["params"]) == {"note": "visible"}


def test_the_admins_shared_schedule_rows_do_not_list_their_schedules_arguments(
    client: Client, boss: User
) -> None:
    """A crontab row's page lists the schedules using it: by name and task, not their raw
    (sealed, restricted or plain-task) arguments."""
    definition = ScheduleDefinition(
        name="nightly secret", job="demo.sensitive", timing=CRON,
        params={"password": SECRET, "label": "x"},
    )  # fmt: skip
    task = services.schedule_save(definition, actor=Actor(user=boss))
    client.force_login(boss)
    assert task.crontab is not None

    page = client.get(f"/admin/django_celery_beat/crontabschedule/{task.crontab.pk}/change/")

    assert page.status_code == 200
    assert b"nightly secret" in page.content
    assert SECRET.encode() not in page.content
    assert b"$sealed" not in page.content


# --- 6. the destructive built-ins need their own permissions -----------------------------------


def test_cleanup_needs_its_own_permission(client: Client, broker: str) -> None:
    launcher = staff("launcher", "launch_job")
    raw = issue_token(launcher, "launcher")[1]
    client.force_login(launcher)
    form = {"days": "1", "failed_days": "1", "batch_size": "1000"}

    page = client.post("/jobs/taskdeck.cleanup/", form)
    call = api(client, raw, "POST", "runs", {"job": "taskdeck.cleanup", "params": {"days": 1}})

    assert (page.status_code, call.status_code) == (403, 403)
    assert "tasks_app.run_cleanup" in call.json()["detail"]
    assert not Run.objects.filter(job_name="taskdeck.cleanup").exists()

    cleaner = staff("cleaner", "launch_job", "run_cleanup")
    allowed = api(client, issue_token(cleaner, "c")[1], "POST", "runs", {
        "job": "taskdeck.cleanup", "params": {"days": 1},
    })  # fmt: skip
    assert allowed.status_code == 201, allowed.content


def test_send_email_needs_its_own_permission(client: Client, broker: str) -> None:
    launcher = staff("launcher", "launch_job")
    body = {"job": "taskdeck.send_email", "params": {"to": ["a@example.com"], "subject": "hi"}}

    call = api(client, issue_token(launcher, "l")[1], "POST", "runs", body)

    assert call.status_code == 403
    assert "tasks_app.send_email" in call.json()["detail"]
    assert not Run.objects.filter(job_name="taskdeck.send_email").exists()


def recipients(count: int) -> list[str]:
    return [f"user{n}@example.com" for n in range(count)]


def test_send_email_takes_at_most_the_configured_number_of_recipients(
    client: Client, broker: str, boss: User
) -> None:
    assert django_settings.TASKDECK_EMAIL_MAX_RECIPIENTS == 50
    raw = issue_token(boss, "boss")[1]
    client.force_login(boss)
    too_many = recipients(51)

    call = api(client, raw, "POST", "runs", {
        "job": "taskdeck.send_email", "params": {"to": too_many, "subject": "hi"},
    })  # fmt: skip
    page = client.post("/jobs/taskdeck.send_email/", {"to": "\n".join(too_many), "subject": "hi"})
    with pytest.raises(services.ParamsError) as caught:
        services.schedule_save(
            ScheduleDefinition(
                name="mass mail", job="taskdeck.send_email", timing=CRON,
                params={"to": recipients(6000), "subject": "hi"},
            ),
            actor=Actor(user=boss),
        )  # fmt: skip

    assert call.status_code == 400
    assert call.json()["errors"]["params.to"] == ["Give at most 50 value(s)."]
    assert page.status_code == 400
    assert b"Give at most 50 value(s)." in page.content
    assert "to" in caught.value.errors
    assert not Run.objects.filter(job_name="taskdeck.send_email").exists()
    assert not PeriodicTask.objects.filter(name="mass mail").exists()

    fifty = api(client, raw, "POST", "runs", {
        "job": "taskdeck.send_email", "params": {"to": recipients(50), "subject": "hi"},
    })  # fmt: skip
    assert fifty.status_code == 201, fifty.content


# --- 7. API tokens: expiry, and revoked by a password change -----------------------------------


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", password="x-Secret-123", is_staff=True)


def test_an_expired_token_is_refused_with_a_401_that_says_so(client: Client, alice: User) -> None:
    token, raw = token_create(actor=Actor(user=alice), name="ci", expires_in_days=1)
    assert token.expires_at is not None
    assert timedelta(hours=23) < token.expires_at - timezone.now() <= timedelta(days=1)
    assert api(client, raw, "GET", "jobs").status_code == 200

    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = api(client, raw, "GET", "jobs")
    docs = client.get("/api/v1/openapi.json", headers={"Authorization": f"Bearer {raw}"})

    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"]
    assert refused["WWW-Authenticate"].startswith("Bearer")
    assert docs.status_code == 401
    assert "expired" in docs.json()["detail"]


def test_the_tokens_page_chooses_and_lists_the_expiry(client: Client, alice: User) -> None:
    client.force_login(alice)

    made = client.post("/tokens/", {"name": "weekly", "expires_in_days": "7"})
    forever = client.post("/tokens/", {"name": "forever", "expires_in_days": ""})
    bad = client.post("/tokens/", {"name": "odd", "expires_in_days": "5"})

    assert (made.status_code, forever.status_code, bad.status_code) == (201, 201, 400)
    weekly = ApiToken.objects.get(name="weekly")
    assert weekly.expires_at is not None
    assert timedelta(days=6, hours=23) < weekly.expires_at - timezone.now() <= timedelta(days=7)
    assert ApiToken.objects.get(name="forever").expires_at is None
    assert not ApiToken.objects.filter(name="odd").exists()
    assert b'id="id_expires_in_days_error"' in bad.content
    listing = client.get("/tokens/").content.decode()
    assert f"{weekly.expires_at:%Y-%m-%d %H:%M}" in listing
    assert "never" in listing
    entry = AuditEntry.objects.filter(action="token.create").order_by("id").first()
    assert entry is not None
    assert entry.details["expires_at"] == weekly.expires_at.isoformat()


def test_manage_py_issues_expiring_tokens(alice: User) -> None:
    out = StringIO()
    call_command("create_api_token", "alice", "--name", "cron", "--expires-days", "3", stdout=out)

    token = ApiToken.objects.get(name="cron")
    assert token.expires_at is not None
    assert timedelta(days=2, hours=23) < token.expires_at - timezone.now() <= timedelta(days=3)
    with pytest.raises(CommandError, match="between 1 and"):
        call_command("create_api_token", "alice", "--expires-days", "0", stdout=StringIO())


def test_a_password_change_revokes_the_users_tokens(client: Client, alice: User) -> None:
    _, raw = token_create(actor=Actor(user=alice), name="ci")
    other = User.objects.create_user("bob", password="x-Secret-123", is_staff=True)
    _, bobs = token_create(actor=Actor(user=other), name="bob's")
    # Saving the user otherwise (a login, a new e-mail address) keeps the tokens.
    client.login(username="alice", password="x-Secret-123")
    alice.refresh_from_db()
    alice.email = "alice@example.com"
    alice.save()
    assert api(client, raw, "GET", "jobs").status_code == 200

    alice.set_password("a-New-Secret-456")
    alice.save()

    assert api(client, raw, "GET", "jobs").status_code == 401
    assert api(client, bobs, "GET", "jobs").status_code == 200
    entry = AuditEntry.objects.get(action="token.revoke_all")
    assert entry.actor_label == "password change"
    assert entry.details["user"] == "alice"
    assert [t["name"] for t in entry.details["tokens"]] == ["ci"]


def test_the_admins_password_form_revokes_them_too(client: Client, alice: User, boss: User) -> None:
    token, _ = token_create(actor=Actor(user=alice), name="ci")
    client.force_login(boss)

    response = client.post(
        f"/admin/auth/user/{alice.pk}/password/",
        {
            "password1": "a-New-Secret-456",
            "password2": "a-New-Secret-456",
            "usable_password": "true",
        },
    )

    assert response.status_code == 302, response.content
    assert ApiToken.objects.get(pk=token.pk).revoked_at is not None
