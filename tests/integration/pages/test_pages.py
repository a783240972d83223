"""The dashboard pages through Django's test client: full pages, htmx partials, actions by
POST-then-redirect, inline errors, permissions, and escaping of whatever a job produced."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tasks_app.models import AuditEntry, Run, RunSource, RunState
from tests.support import ledger

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def boss(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("boss", password="x-Secret-123"))
    return client


@pytest.fixture
def viewer(client: Client) -> Client:
    """Staff with no Taskdeck permission: may browse, may not act."""
    client.force_login(User.objects.create_user("viewer", password="x-Secret-123", is_staff=True))
    return client


def make_run(state: RunState = RunState.FAILURE, **fields: Any) -> Run:
    fields.setdefault("task_id", f"t-{Run.objects.count() + 1:04d}-0000-0000-0000-000000000000")
    fields.setdefault("params", {"failure_rate": 1.0})
    return ledger.make_run(state, **fields)


@pytest.mark.parametrize(
    "name", ["tasks_app:overview", "tasks_app:jobs", "tasks_app:runs", "tasks_app:workers",
             "tasks_app:audit"],
)  # fmt: skip
def test_every_page_renders_with_one_navigation(boss: Client, name: str) -> None:
    make_run()

    response = boss.get(reverse(name))

    assert response.status_code == 200
    html = response.content.decode()
    for label in ("Overview", "Jobs", "Runs", "Workers &amp; queues", "Audit"):
        assert f">{label}</a>" in html
    assert 'aria-current="page"' in html


def test_launch_form_shows_typed_widgets_and_keeps_input_on_error(
    boss: Client, broker: str
) -> None:
    url = reverse("tasks_app:launch", args=["demo.progress"])

    page = boss.get(url).content.decode()
    response = boss.post(url, {"steps": "0", "step_seconds": "0.5"})

    assert 'type="number"' in page
    assert 'min="1"' in page
    assert 'max="10000"' in page
    assert "How many steps to take." in page
    assert response.status_code == 400
    html = response.content.decode()
    assert "Ensure this value is greater than or equal to 1." in html
    assert 'value="0.5"' in html  # what was typed is still there
    assert not Run.objects.exists()


@pytest.mark.parametrize("delay", [str(10**8), "9" * 400])
def test_a_delay_past_the_limit_is_refused_next_to_its_field(
    boss: Client, broker: str, delay: str
) -> None:
    """Past the service's limit, or past what a float holds: an inline error, nothing queued."""
    url = reverse("tasks_app:launch", args=["demo.progress"])

    response = boss.post(url, {"steps": "3", "step_seconds": "0", "option-delay_seconds": delay})

    assert response.status_code == 400
    errors = response.context["options"].errors
    assert list(errors) == ["delay_seconds"], errors
    assert not Run.objects.exists()


def test_a_valid_launch_lands_on_the_new_runs_page(boss: Client, broker: str) -> None:
    url = reverse("tasks_app:launch", args=["demo.progress"])

    response = boss.post(url, {"steps": "3", "step_seconds": "0", "option-delay_seconds": "60"})

    run = Run.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("tasks_app:run", args=[run.task_id])
    assert (run.source, run.params, run.actor_label) == (
        RunSource.FORM, {"steps": 3, "step_seconds": 0.0}, "boss",
    )  # fmt: skip
    assert run.eta is not None
    page = boss.get(response["Location"]).content.decode()
    assert "Demo: progress" in page
    assert 'hx-trigger="every 1s" data-poll' in page  # queued: the page polls (while visible)
    from tasks_app import services
    from tasks_app.services import Actor

    services.run_cancel(run, actor=Actor(user=User.objects.get(username="boss")))


def test_runs_filters_are_in_the_url_and_combine(boss: Client) -> None:
    make_run(RunState.FAILURE, job_name="demo.flaky")
    make_run(RunState.SUCCESS, job_name="demo.flaky")
    make_run(RunState.FAILURE, job_name="demo.progress")

    response = boss.get(reverse("tasks_app:runs"), {"state": "FAILURE", "job": "demo.flaky"})

    rows = response.content.decode().count('name="run"')
    assert rows == 1


def test_runs_pages_by_cursor(boss: Client) -> None:
    for i in range(55):
        make_run(RunState.SUCCESS, queued_at=timezone.now() - timedelta(minutes=i))

    first = boss.get(reverse("tasks_app:runs"))
    cursor = first.context["page"].next_cursor
    second = boss.get(reverse("tasks_app:runs"), {"cursor": cursor})

    assert len(first.context["page"].runs) == 50
    assert len(second.context["page"].runs) == 5
    assert second.context["page"].next_cursor is None
    seen = {r.pk for r in first.context["page"].runs} | {r.pk for r in second.context["page"].runs}
    assert len(seen) == 55


def test_htmx_asks_for_the_rows_only(boss: Client) -> None:
    make_run(RunState.STARTED)

    response = boss.get(reverse("tasks_app:runs"), HTTP_HX_REQUEST="true", HTTP_HX_TARGET="rows")

    html = response.content.decode()
    assert html.lstrip().startswith('<tbody id="rows"')
    assert "every 2s" in html  # an active row keeps the region polling
    assert "<nav" not in html


def test_run_detail_escapes_everything_a_job_produced(boss: Client) -> None:
    run = make_run(
        RunState.FAILURE,
        job_name=HOSTILE,
        params={"note": HOSTILE},
        error=HOSTILE,
        progress_message=HOSTILE,
        log=[{"at": "2026-01-01T00:00:00", "message": HOSTILE}],
        schedule_name=HOSTILE,
    )

    html = boss.get(reverse("tasks_app:run", args=[run.task_id])).content.decode()

    assert HOSTILE not in html
    assert "&lt;script&gt;" in html


def test_staff_without_permissions_browse_but_see_no_buttons_and_are_refused(
    viewer: Client,
) -> None:
    run = make_run(RunState.FAILURE)

    page = viewer.get(reverse("tasks_app:run", args=[run.task_id])).content.decode()
    retry = viewer.post(reverse("tasks_app:run_retry", args=[run.task_id]))
    launch = viewer.post(reverse("tasks_app:launch", args=["demo.progress"]), {"steps": "1"})

    assert ">Retry</button>" not in page
    assert retry.status_code == 403
    assert launch.status_code in {400, 403}
    assert Run.objects.count() == 1
    assert not AuditEntry.objects.exists()


def test_permissions_come_from_groups(client: Client, broker: str) -> None:
    operators = Group.objects.create(name="operators")
    operators.permissions.add(Permission.objects.get(codename="retry_run"))
    user = User.objects.create_user("op", password="x-Secret-123", is_staff=True)
    user.groups.add(operators)
    client.force_login(user)
    run = make_run(RunState.FAILURE)

    response = client.post(reverse("tasks_app:run_retry", args=[run.task_id]))

    new = Run.objects.exclude(pk=run.pk).get()
    assert response.status_code == 302
    assert new.retry_of_id == run.pk


def test_retry_all_failed_states_the_count_and_asks_first(boss: Client, broker: str) -> None:
    for _ in range(3):
        make_run(RunState.FAILURE, job_name="demo.flaky")
    make_run(RunState.SUCCESS, job_name="demo.flaky")
    url = reverse("tasks_app:runs_retry_failed") + "?job=demo.flaky"

    confirm = boss.get(url)
    done = boss.post(url)

    assert "This will retry <strong>3</strong> failed or lost runs" in confirm.content.decode()
    assert done.status_code == 302
    assert Run.objects.filter(source=RunSource.RETRY).count() == 3


def test_workers_page_loads_the_panel_after_the_page(boss: Client) -> None:
    page = boss.get(reverse("tasks_app:workers")).content.decode()

    assert 'hx-trigger="load' in page
    assert "Asking the broker" in page


def test_workers_panel_says_when_the_broker_is_down(boss: Client) -> None:
    from dashboard.celery import app
    from tests.support.services import use_broker

    previous = app.conf.broker_url
    use_broker("redis://127.0.0.1:1/0")
    try:
        html = boss.get(reverse("tasks_app:workers_panel"), HTTP_HX_REQUEST="true").content.decode()
    finally:
        use_broker(previous)

    assert "The broker is unreachable" in html
