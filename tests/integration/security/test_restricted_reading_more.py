"""A job's `permission=` guards reading its runs (issue 11, item 5), in the places the first
fixes left open: the parameter search must not confirm a guessed value of a restricted run (runs
page, API, "retry failed" count and bulk retry by filter), and the audit trail (audit page,
admin, schedule page) must not show the launch parameters or schedule snapshots of such a job.
Each is checked for a staff user lacking the job's permission and one having it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery import current_app
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tasks_app import services
from tasks_app.jobs import registry
from tasks_app.jobs.context import JobContext
from tasks_app.jobs.registry import job
from tasks_app.models import AuditEntry, Run, RunState
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing
from tasks_app.selectors import RunFilter, runs_matching
from tasks_app.services import Actor
from tasks_app.tokens import issue_token
from tests.integration.security.test_security_permissions import api, staff

pytestmark = pytest.mark.django_db

GUARDED = "tests.guarded_payroll"
SECRET = "payroll-guess-8831"
OTHER_SECRET = "payroll-later-5517"
OPEN_NOTE = "open-note-2040"
HIDDEN = b"Hidden: needs this job"
CRON = Timing(Kind.CRONTAB, cron="0 3 * * *", timezone="UTC")
# What both users may do; the keeper also has the guarded job's permission.
ROLE = ("launch_job", "retry_run", "cancel_run", "manage_schedules", "view_auditentry")


@pytest.fixture
def guarded_job() -> Iterator[str]:
    """A job that asks for `auth.change_user` (to launch it, and to read its runs)."""

    @job(name=GUARDED, title="Payroll", retry="no_retry", permission="auth.change_user")
    def payroll(ctx: JobContext, team: str = "") -> None:
        """Never runs: no worker knows it."""

    try:
        yield GUARDED
    finally:
        registry._REGISTRY.pop(GUARDED, None)
        current_app.tasks.pop(GUARDED, None)


@pytest.fixture
def viewer() -> User:
    return staff("viewer", *ROLE)


@pytest.fixture
def keeper() -> User:
    return staff("keeper", *ROLE, "change_user")


def run_of(job_name: str, state: RunState, params: dict[str, Any]) -> Run:
    now = timezone.now()
    return Run.objects.create(
        task_id=str(uuid.uuid4()), job_name=job_name, state=state, queued_at=now,
        finished_at=now, params=params,
    )  # fmt: skip


def listed(client: Client, **query: str) -> str:
    response = client.get("/runs/", query)
    assert response.status_code == 200
    return response.content.decode()


def api_found(client: Client, raw: str, q: str) -> list[str]:
    response = client.get("/api/v1/runs", {"q": q}, headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200
    return [item["task_id"] for item in response.json()["items"]]


# --- A. the search in the parameters is no guessing oracle ----------------------------------------


def test_a_search_does_not_find_a_restricted_run_by_its_parameters_without_the_permission(
    client: Client, guarded_job: str, viewer: User
) -> None:
    guarded = run_of(GUARDED, RunState.FAILURE, {"team": SECRET})
    open_run = run_of("demo.flaky", RunState.SUCCESS, {"note": SECRET})
    raw = issue_token(viewer, "viewer")[1]
    client.force_login(viewer)

    page = listed(client, q=SECRET)
    by_job = listed(client, job=GUARDED, q=SECRET)
    found = api_found(client, raw, SECRET)
    count = client.get("/runs/retry-failed/", {"q": SECRET, "job": GUARDED})

    assert guarded.task_id not in page
    assert open_run.task_id in page  # other jobs' runs are still found by their parameters
    assert guarded.task_id not in by_job
    assert found == [open_run.task_id]
    assert count.status_code == 200
    assert count.context["count"] == 0
    # The row itself is no secret: the history lists it, and its task id finds it.
    assert guarded.task_id in listed(client, job=GUARDED)
    assert guarded.task_id in listed(client, q=guarded.task_id[:8])
    assert api_found(client, raw, guarded.task_id[:8]) == [guarded.task_id]


def test_with_the_permission_the_search_finds_it(
    client: Client, guarded_job: str, keeper: User
) -> None:
    guarded = run_of(GUARDED, RunState.FAILURE, {"team": SECRET})
    raw = issue_token(keeper, "keeper")[1]
    client.force_login(keeper)

    assert guarded.task_id in listed(client, q=SECRET)
    assert guarded.task_id in listed(client, job=GUARDED, q=SECRET)
    assert api_found(client, raw, SECRET) == [guarded.task_id]
    count = client.get("/runs/retry-failed/", {"q": SECRET, "job": GUARDED})
    assert count.context["count"] == 1


def test_a_bulk_retry_by_filter_neither_retries_nor_names_a_run_found_by_a_guess(
    client: Client, broker: str, guarded_job: str, viewer: User, keeper: User
) -> None:
    """Its skipped list would confirm the guess ("needs a permission you lack") as surely as a
    search result."""
    guarded = run_of(GUARDED, RunState.FAILURE, {"team": SECRET})
    client.force_login(viewer)

    posted = client.post(f"/runs/retry-failed/?q={SECRET}")
    by_api = api(client, issue_token(viewer, "viewer")[1], "POST", "runs/retry", {
        "filter": {"q": SECRET},
    })  # fmt: skip

    assert posted.status_code == 302
    assert not [str(m) for m in get_messages(posted.wsgi_request)]  # nothing retried or skipped
    assert by_api.status_code == 200
    assert by_api.json() == {"retried": [], "skipped": []}
    assert not Run.objects.filter(retry_of=guarded).exists()

    allowed = api(client, issue_token(keeper, "keeper")[1], "POST", "runs/retry", {
        "filter": {"q": SECRET},
    })  # fmt: skip
    [retried] = allowed.json()["retried"]
    assert Run.objects.get(task_id=retried["task_id"]).retry_of_id == guarded.pk


@pytest.mark.postgresql
def test_the_trigram_index_still_serves_a_search_that_leaves_jobs_out() -> None:
    """The exclusion is a condition of its own: the parameter expression stays the index's."""
    for n in range(200):
        run_of("demo.flaky", RunState.SUCCESS, {"team": f"team-{n}"})
    target = run_of("demo.flaky", RunState.SUCCESS, {"team": "zebra-crossing"})
    run_of(GUARDED, RunState.SUCCESS, {"team": "zebra-crossing"})
    filters = RunFilter(text="Zebra-Cross", unreadable_jobs=(GUARDED,))
    query = runs_matching(filters).order_by("-queued_at", "-id")[:51]
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Bitmap Index Scan on run_params_trgm_idx" in plan, plan
    assert list(query) == [target]


# --- B. the audit trail keeps a restricted job's details to those who may read them ----------


@pytest.fixture
def trail(broker: str, guarded_job: str, keeper: User) -> dict[str, Any]:
    """Entries written by the services for the guarded job (a launch, a bulk retry, a schedule
    created and edited, another created and deleted) and one open entry. Answers the guarded
    schedule and the ids of the entries a viewer without the permission must not read."""
    actor = Actor(user=keeper)
    services.job_launch(GUARDED, {"team": SECRET}, actor=actor)
    failed = run_of(GUARDED, RunState.FAILURE, {"team": SECRET})
    services.runs_retry_bulk(actor=actor, task_ids=[failed.task_id])  # names runs, no job
    definition = ScheduleDefinition(
        name="payroll nightly", job=GUARDED, timing=CRON, params={"team": SECRET}
    )
    schedule = services.schedule_save(definition, actor=actor)
    # An edit records only what changed: the parameters, not the job.
    edited = ScheduleDefinition(
        name="payroll nightly", job=GUARDED, timing=CRON, params={"team": OTHER_SECRET}
    )
    services.schedule_save(edited, actor=actor, task=schedule)
    gone = services.schedule_save(
        ScheduleDefinition(name="payroll once", job=GUARDED, timing=CRON, params={"team": SECRET}),
        actor=actor,
    )
    services.schedule_delete(gone, actor=actor)
    guarded_ids = set(AuditEntry.objects.values_list("pk", flat=True))
    open_schedule = services.schedule_save(
        ScheduleDefinition(
            name="open progress", job="demo.progress", timing=CRON, params={"steps": 3},
            description=OPEN_NOTE,
        ),
        actor=actor,
    )  # fmt: skip
    assert len(guarded_ids) == 7  # launch, retry, bulk retry, create, edit, create, delete
    return {"schedule": schedule, "open": open_schedule, "guarded_ids": guarded_ids}


def hidden_ids(response: Any, rows: str) -> set[int]:
    return {row.entry.pk for row in _rows(response, rows) if not row.readable}


def _rows(response: Any, rows: str) -> list[Any]:
    holder = response.context["page" if rows == "page" else "detail"]
    return list(holder.entries if rows == "page" else holder.audit)


def test_the_audit_page_hides_a_restricted_jobs_details_but_lists_the_entry(
    client: Client, trail: dict[str, Any], viewer: User
) -> None:
    client.force_login(viewer)

    response = client.get("/audit/")
    content = response.content.decode()

    assert response.status_code == 200
    assert hidden_ids(response, "page") == trail["guarded_ids"]
    assert SECRET not in content
    assert OTHER_SECRET not in content
    assert content.count(HIDDEN.decode()) == len(trail["guarded_ids"])
    for action in ("run.launch", "run.retry", "runs.retry_bulk", "schedule.edit"):
        assert action in content  # what was done, by whom, to what: still shown
    assert "schedule payroll nightly" in content
    assert OPEN_NOTE in content  # an open job's entry keeps its details


def test_with_the_permission_the_audit_page_shows_them(
    client: Client, trail: dict[str, Any], keeper: User
) -> None:
    client.force_login(keeper)

    response = client.get("/audit/")

    assert hidden_ids(response, "page") == set()
    assert SECRET in response.content.decode()
    assert OTHER_SECRET in response.content.decode()
    assert HIDDEN not in response.content


def test_the_admin_hides_a_restricted_entrys_details(
    client: Client, trail: dict[str, Any], viewer: User, keeper: User
) -> None:
    launch = AuditEntry.objects.get(action="run.launch")
    edit = AuditEntry.objects.get(action="schedule.edit")
    open_create = AuditEntry.objects.get(action="schedule.create", target_id=str(trail["open"].pk))
    client.force_login(viewer)

    listing = client.get("/admin/tasks_app/auditentry/")
    pages = [client.get(f"/admin/tasks_app/auditentry/{e.pk}/change/") for e in (launch, edit)]
    open_page = client.get(f"/admin/tasks_app/auditentry/{open_create.pk}/change/")

    assert listing.status_code == 200
    assert b"run.launch" in listing.content  # the list shows the entry
    assert SECRET.encode() not in listing.content
    for page in pages:
        assert page.status_code == 200
        assert SECRET.encode() not in page.content
        assert OTHER_SECRET.encode() not in page.content
        assert HIDDEN in page.content
    assert OPEN_NOTE.encode() in open_page.content

    client.force_login(keeper)
    for entry, secret in ((launch, SECRET), (edit, OTHER_SECRET)):
        page = client.get(f"/admin/tasks_app/auditentry/{entry.pk}/change/")
        assert secret.encode() in page.content
        assert HIDDEN not in page.content


def test_the_schedule_page_hides_a_restricted_jobs_parameters_and_changes(
    client: Client, trail: dict[str, Any], viewer: User, keeper: User
) -> None:
    schedule: PeriodicTask = trail["schedule"]
    client.force_login(viewer)

    page = client.get(f"/schedules/{schedule.pk}/")
    editor = client.get(f"/schedules/{schedule.pk}/edit/")

    assert page.status_code == 200
    assert b"payroll nightly" in page.content
    assert b"schedule.edit" in page.content
    assert SECRET.encode() not in page.content
    assert OTHER_SECRET.encode() not in page.content  # neither its parameters nor its history
    assert hidden_ids(page, "detail") == {
        e.pk for e in AuditEntry.objects.filter(target_id=str(schedule.pk))
    }
    assert page.context["detail"].params == {}
    # The editor would show the stored parameters; saving needs the permission anyway.
    assert editor.status_code == 403
    assert OTHER_SECRET.encode() not in editor.content

    client.force_login(keeper)
    page = client.get(f"/schedules/{schedule.pk}/")
    assert SECRET.encode() in page.content  # in the create entry
    assert OTHER_SECRET.encode() in page.content
    assert HIDDEN not in page.content
    assert client.get(f"/schedules/{schedule.pk}/edit/").status_code == 200


def test_the_api_hides_a_restricted_schedules_parameters(
    client: Client, trail: dict[str, Any], viewer: User, keeper: User
) -> None:
    schedule: PeriodicTask = trail["schedule"]
    for user, hidden in ((viewer, True), (keeper, False)):
        raw = issue_token(user, "reader")[1]
        one = api(client, raw, "GET", f"schedules/{schedule.pk}").json()
        listed = {item["id"]: item for item in api(client, raw, "GET", "schedules").json()["items"]}

        for item in (one, listed[schedule.pk]):
            assert item["params_hidden"] is hidden
            assert item["params"] == ({} if hidden else {"team": OTHER_SECRET})
        assert listed[trail["open"].pk]["params"]["steps"] == 3  # an open job's are shown
        assert listed[trail["open"].pk]["params_hidden"] is False


def test_a_schedule_moved_to_an_open_job_keeps_its_restricted_past_hidden(
    client: Client, broker: str, guarded_job: str, viewer: User, keeper: User
) -> None:
    """An edit of the parameters only names no job, and the schedule's job now is an open one:
    its audited history tells that the entry is about the guarded job."""
    actor = Actor(user=keeper)
    schedule = services.schedule_save(
        ScheduleDefinition(name="was payroll", job=GUARDED, timing=CRON, params={"team": SECRET}),
        actor=actor,
    )
    services.schedule_save(
        ScheduleDefinition(
            name="was payroll", job=GUARDED, timing=CRON, params={"team": OTHER_SECRET}
        ),
        actor=actor,
        task=schedule,
    )
    params_only = AuditEntry.objects.get(action="schedule.edit")
    assert "job" not in params_only.details["after"]
    moved = ScheduleDefinition(
        name="was payroll", job="demo.progress", timing=CRON, params={"steps": 2},
        description=OPEN_NOTE,
    )  # fmt: skip
    services.schedule_save(moved, actor=actor, task=PeriodicTask.objects.get(pk=schedule.pk))
    client.force_login(viewer)

    page = client.get(f"/schedules/{schedule.pk}/")
    audit = client.get("/audit/")

    assert page.context["detail"].params["steps"] == 2  # its job now is an open one
    assert params_only.pk in hidden_ids(page, "detail")
    assert params_only.pk in hidden_ids(audit, "page")
    for response in (page, audit):
        assert SECRET.encode() not in response.content
        assert OTHER_SECRET.encode() not in response.content
        assert HIDDEN in response.content
