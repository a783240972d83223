"""Hostile strings never run, on any page: schedule names and descriptions (the schedules list,
a schedule's page, the editor, the audit trail, a run that links its schedule), job titles,
descriptions and parameter labels (from a job registered here, in the live server's process),
the admin (PeriodicTask changelist and form, Run, TaskResult and AuditEntry admin) and the API's
docs page showing an answer that carries them.

These pages run in a browser context with the Content-Security-Policy bypassed: the policy
would block an inline script anyway, and this is about escaping, which must hold on its own.
`window.alert`, `confirm` and `prompt` are replaced before any page script runs; any of them
called, the `window.__xss` marker set, or an element the payload would create found in the
page fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated

import pytest
from celery import current_app
from django.contrib.auth.models import User
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult
from playwright.sync_api import Browser, Dialog, Page, expect
from pytest_django.live_server_helper import LiveServer

from tasks_app import services
from tasks_app.jobs import registry
from tasks_app.jobs.context import JobContext
from tasks_app.jobs.params import Param
from tasks_app.jobs.registry import job
from tasks_app.models import (
    Alert,
    AlertChannel,
    AlertChannelKind,
    AlertDelivery,
    AlertEvent,
    AlertMessage,
    AlertRule,
    AlertRuleKind,
    AuditEntry,
    DeliveryState,
    Run,
    RunSource,
    RunState,
)
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing
from tasks_app.services import Actor
from tasks_app.tokens import issue_token
from tests.browser.conftest import PASSWORD, log_in, open_context

# Breaks out of text, of a double- or single-quoted attribute and of a <script> block; short
# enough for a schedule's name (200 characters).
HOSTILE = (
    "\"'><img src=x onerror=\"__xss='img';alert(1)\"><script>__xss='script';alert(2)</script>"
    "<svg onload=\"__xss='svg';confirm(3)\"></svg></script><script>__xss='end';prompt(4)</script>"
)
SHOWN = "<img src=x onerror="  # how the payload reads when it is shown as text
EVIL_JOB = "evil.job"
HOOKS = """
for (const name of ["alert", "confirm", "prompt"]) {
  window[name] = (...args) => { window.__xss = `${name}(${args.join(",")})`; };
}
"""


@pytest.fixture
def evil_job() -> Iterator[str]:
    assert len(HOSTILE) <= 200
    """A job whose title, description and parameter label are hostile, registered in this
    process only (the live server's), and gone afterwards."""

    @job(name=EVIL_JOB, title=HOSTILE, description=HOSTILE, retry="no_retry")
    def evil(
        ctx: JobContext, note: Annotated[str, Param(label=HOSTILE, help=HOSTILE)] = HOSTILE
    ) -> None:
        """Never runs."""

    try:
        yield EVIL_JOB
    finally:
        registry._REGISTRY.pop(EVIL_JOB, None)
        current_app.tasks.pop(EVIL_JOB, None)


@pytest.fixture
def raw_page(browser: Browser, live_server: LiveServer) -> Iterator[tuple[Page, list[str]]]:
    """A page whose context ignores the Content-Security-Policy, with the dialog hooks."""
    context = open_context(browser, live_server, bypass_csp=True)
    context.add_init_script(HOOKS)
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield page, dialogs
    context.close()


def assert_inert(page: Page, dialogs: list[str], where: str, *, shown: bool = True) -> None:
    marker = page.evaluate("window.__xss")
    assert marker is None, f"script ran on {where}: {marker}"
    assert dialogs == [], f"a dialog opened on {where}: {dialogs}"
    injected = page.evaluate("""() => [
        ...document.querySelectorAll("img[src=x], svg[onload], [onerror], [onload]"),
        ...[...document.scripts].filter(s => s.type !== "application/json"
                                          && s.textContent.includes("__xss")),
    ].map(e => e.outerHTML.slice(0, 80))""")
    assert injected == [], f"the payload made elements on {where}: {injected}"
    if shown:
        text = page.evaluate("document.body.innerText")
        assert SHOWN in text, f"the hostile string is not even shown on {where}"


def hostile_world(boss: User) -> tuple[PeriodicTask, Run]:
    schedule = services.schedule_save(
        ScheduleDefinition(
            name=HOSTILE, job="demo.progress",
            timing=Timing(Kind.CRONTAB, cron="30 2 * * 1-5", timezone="UTC"),
            params={"steps": 5}, description=HOSTILE,
        ),
        actor=Actor(user=boss),
    )  # fmt: skip
    now = timezone.now()
    run = Run.objects.create(
        task_id="hostile-evil", job_name=EVIL_JOB, state=RunState.FAILURE, queued_at=now,
        finished_at=now, source=RunSource.SCHEDULE, schedule_name=HOSTILE, actor_label=HOSTILE,
        params={"note": HOSTILE}, error=HOSTILE, progress_message=HOSTILE,
        log=[{"at": now.isoformat(), "message": HOSTILE}],
    )  # fmt: skip
    TaskResult.objects.create(
        task_id=run.task_id, task_name=HOSTILE, status="FAILURE", result=f'"{HOSTILE}"',
        traceback=f"Traceback (most recent call last):\n  {HOSTILE}",
    )  # fmt: skip
    AuditEntry.objects.create(
        actor_label=HOSTILE, action="run.launch", target_type="run", target_id=run.task_id,
        details={"params": {"note": HOSTILE}},
    )  # fmt: skip
    done = Run.objects.create(
        task_id="hostile-done", job_name=EVIL_JOB, state=RunState.SUCCESS, queued_at=now,
        finished_at=now, params={"note": HOSTILE},
    )  # fmt: skip
    TaskResult.objects.create(
        task_id=done.task_id, task_name=EVIL_JOB, status="SUCCESS",
        result=json.dumps({"summary": HOSTILE, HOSTILE: [HOSTILE]}),
        content_type="application/json",
    )  # fmt: skip
    return schedule, run


def test_hostile_schedules_jobs_and_admin_rows_never_run(
    raw_page: tuple[Page, list[str]], boss: User, evil_job: str, broker: str
) -> None:
    page, dialogs = raw_page
    schedule, run = hostile_world(boss)
    log_in(page, boss.username, PASSWORD)

    pages = {
        "the schedules list": "/schedules/",
        "the schedule's page": f"/schedules/{schedule.pk}/",
        "the schedule editor": f"/schedules/{schedule.pk}/edit/",
        "the delete confirmation": f"/schedules/{schedule.pk}/delete/",
        "the audit trail": "/audit/",
        "the run's page (linking its schedule)": f"/runs/{run.task_id}/",
        "a successful run's page (its result)": "/runs/hostile-done/",
        "the runs list": "/runs/",
        "the overview": "/",
        "the jobs list": "/jobs/",
        "the hostile job's launch form": f"/jobs/{evil_job}/",
        "the PeriodicTask changelist": "/admin/django_celery_beat/periodictask/",
        "the PeriodicTask form": f"/admin/django_celery_beat/periodictask/{schedule.pk}/change/",
        "the PeriodicTask add form": "/admin/django_celery_beat/periodictask/add/",
        "the Run changelist": "/admin/tasks_app/run/",
        "the Run admin page": f"/admin/tasks_app/run/{run.pk}/change/",
        "the TaskResult changelist": "/admin/django_celery_results/taskresult/",
        "the AuditEntry changelist": "/admin/tasks_app/auditentry/",
    }
    # Only the forms show the payload as a field's value, not as the page's text.
    in_fields = {"the schedule editor", "the PeriodicTask form", "the PeriodicTask add form"}
    for where, url in pages.items():
        response = page.goto(url)
        assert response is not None, where
        assert response.status == 200, (where, response.status)
        assert_inert(page, dialogs, where, shown=where not in in_fields)

    # The result, the traceback and the link to the schedule show it as text.
    page.goto("/runs/hostile-done/")
    expect(page.locator("pre.json")).to_contain_text(SHOWN)
    page.goto(f"/runs/{run.task_id}/")
    expect(page.locator("pre.traceback")).to_contain_text(SHOWN)
    expect(page.locator(f"a[href='/schedules/{schedule.pk}/']").first).to_contain_text(SHOWN)
    assert_inert(page, dialogs, "the run's page")

    # The forms hold it as values, intact.
    page.goto(f"/schedules/{schedule.pk}/edit/")
    expect(page.get_by_label("Name")).to_have_value(HOSTILE)
    expect(page.locator("select[name=job] option", has_text=SHOWN)).to_have_count(1)
    page.goto(f"/admin/django_celery_beat/periodictask/{schedule.pk}/change/")
    expect(page.locator("#id_name")).to_have_value(HOSTILE)
    expect(page.locator("#id_description")).to_have_value(HOSTILE)
    page.locator("#id_job").select_option(evil_job)  # htmx swaps in its hostile parameter form
    expect(page.locator("#job-params")).to_contain_text(SHOWN)
    assert_inert(page, dialogs, "the PeriodicTask form after the job swap")

    # The editor swaps in the hostile job's parameters too.
    page.goto("/schedules/new/")
    page.get_by_label("Job").select_option(evil_job)
    expect(page.locator("#job-params")).to_contain_text(SHOWN)
    assert_inert(page, dialogs, "the schedule editor after the job swap")

    # The launch form's hostile label, help and default, and the page after a refused launch.
    page.goto(f"/jobs/{evil_job}/")
    expect(page.locator("input[name=note]")).to_have_value(HOSTILE)
    assert_inert(page, dialogs, "the launch form")


def test_the_api_docs_show_a_hostile_answer_as_text(
    raw_page: tuple[Page, list[str]], boss: User, evil_job: str
) -> None:
    """Swagger UI, authorised with a token, runs `GET /jobs`: the hostile title and description
    come back in the answer it shows."""
    page, dialogs = raw_page
    raw = issue_token(boss, "docs")[1]
    log_in(page, boss.username, PASSWORD)

    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=20_000)
    assert_inert(page, dialogs, "the API docs", shown=False)
    page.locator(".swagger-ui .authorize").first.click()
    page.locator(".swagger-ui .modal-ux input").first.fill(raw)
    page.locator(".swagger-ui .modal-ux button.authorize").click()
    page.locator(".swagger-ui .modal-ux button.btn-done").click()
    operation = page.locator(".swagger-ui .opblock-get", has_text="/api/v1/jobs").first
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    answer = operation.locator(".live-responses-table")
    expect(answer).to_contain_text("onerror=", timeout=20_000)
    assert_inert(page, dialogs, "the API docs after a call", shown=False)


# Rule and channel names hold at most 100 characters: the attribute and text break-outs only.
HOSTILE_NAME = '"\'><img src=x onerror="__xss=\'img\';alert(1)"><svg onload="confirm(3)"></svg>'


def hostile_alerts(run: Run) -> tuple[AlertRule, AlertChannel]:
    """A rule, a channel, a firing alert about the hostile run, and a failed delivery whose
    error, subject and channel name are hostile."""
    assert len(HOSTILE_NAME) <= 100
    channel = AlertChannel.objects.create(
        name=HOSTILE_NAME, kind=AlertChannelKind.WEBHOOK, url="https://hooks.example.com/h",
        secret="s" * 32,
    )  # fmt: skip
    rule = AlertRule.objects.create(
        name=HOSTILE_NAME, kind=AlertRuleKind.SCHEDULE_FAILING, schedule_name=HOSTILE
    )
    rule.channels.add(channel)
    message = AlertMessage.objects.create(
        rule=rule, event=AlertEvent.FIRED, subject=HOSTILE, payload={"subject": HOSTILE}
    )
    Alert.objects.create(
        rule=rule, key=f"streak:{HOSTILE}:{run.task_id}", run=run, job_name=run.job_name,
        schedule_name=HOSTILE, summary=HOSTILE, details={"error": HOSTILE},
        fired_message=message,
    )  # fmt: skip
    AlertDelivery.objects.create(
        message=message, channel=channel, channel_name=HOSTILE_NAME,
        state=DeliveryState.FAILED, attempts=5, response_status=500, last_error=HOSTILE,
    )  # fmt: skip
    return rule, channel


def test_hostile_alert_rules_channels_and_deliveries_never_run(
    raw_page: tuple[Page, list[str]], boss: User, broker: str
) -> None:
    page, dialogs = raw_page
    _, run = hostile_world(boss)
    rule, channel = hostile_alerts(run)
    log_in(page, boss.username, PASSWORD)

    pages = {
        "the alerts page": "/alerts/",
        "the rule editor": f"/alerts/rules/{rule.pk}/edit/",
        "the channel editor": f"/alerts/channels/{channel.pk}/edit/",
        "the rule's delete confirmation": f"/alerts/rules/{rule.pk}/delete/",
        "the AlertRule changelist": "/admin/tasks_app/alertrule/",
        "the AlertRule form": f"/admin/tasks_app/alertrule/{rule.pk}/change/",
        "the AlertChannel changelist": "/admin/tasks_app/alertchannel/",
        "the Alert changelist": "/admin/tasks_app/alert/",
        "the AlertDelivery changelist": "/admin/tasks_app/alertdelivery/",
    }
    in_fields = {"the rule editor", "the channel editor", "the AlertRule form"}
    for where, url in pages.items():
        response = page.goto(url)
        assert response is not None, where
        assert response.status == 200, (where, response.status)
        assert_inert(page, dialogs, where, shown=where not in in_fields)

    page.goto(f"/alerts/rules/{rule.pk}/edit/")
    expect(page.get_by_label("Name")).to_have_value(HOSTILE_NAME)
    assert_inert(page, dialogs, "the rule editor", shown=False)
