"""The Content-Security-Policy holds in Chromium: every page (the dashboard's, with their htmx
swaps, the admin's, the API docs, the tokens page, the login and lockout pages) loads and works
without a single violation. Violations are caught two ways: the `securitypolicyviolation` event
(an init script records each one before any page script runs) and Chromium's console messages.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.contrib import admin
from django.contrib.auth.models import User
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from django_celery_results.models import TaskResult
from playwright.sync_api import ConsoleMessage, Page, expect

from tasks_app import services
from tasks_app.models import AuditEntry, Run, RunSource, RunState
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing
from tasks_app.services import Actor
from tests.browser.conftest import log_in, wait_for_js

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ` +
                    `${e.sourceFile}:${e.lineNumber} ${e.sample || ""}`);
}, true);
// htmx with allowEval off reports an hx-trigger filter or hx-on it would have had to eval.
for (const name of ["htmx:evalDisallowedError", "htmx:syntax:error"]) {
  document.addEventListener(name, () => window.__csp.push(`${name} on ${location.pathname}`), true);
}
"""


@dataclass
class CspWatch:
    page: Page
    console: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    def check(self, where: str) -> None:
        """Fail on any violation so far on this document or an earlier one."""
        found = self.page.evaluate("window.__csp || []")
        problems = [f"{where}: {v}" for v in found] + self.console
        self.console.clear()
        assert problems == [], "Content-Security-Policy violations:\n" + "\n".join(problems)
        self.seen.append(where)

    def visit(self, url: str, ready: str = "main, #content, #swagger-ui") -> None:
        response = self.page.goto(url)
        assert response is not None, url
        assert response.status < 500, (url, response.status)
        assert "content-security-policy" in response.headers, url
        self.page.locator(ready).first.wait_for()
        self.check(url)


@pytest.fixture
def csp(page: Page) -> Iterator[CspWatch]:
    watch = CspWatch(page)
    page.add_init_script(RECORD_VIOLATIONS)

    def on_console(message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            watch.console.append(f"console: {text}")

    page.on("console", on_console)
    yield watch
    if watch.console:  # a violation after the test's last check
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(watch.console))


def make_data(boss: User) -> tuple[Run, Run, PeriodicTask]:
    now = timezone.now()
    done = Run.objects.create(
        task_id="csp-failed", job_name="demo.flaky", state=RunState.FAILURE, queued_at=now,
        started_at=now, finished_at=now, params={"failure_rate": 1.0}, error="boom",
        log=[{"at": now.isoformat(), "message": "a line"}], source=RunSource.SCHEDULE,
        schedule_name="csp schedule",
    )  # fmt: skip
    active = Run.objects.create(
        task_id="csp-active", job_name="demo.progress", state=RunState.PROGRESS, queued_at=now,
        started_at=now, heartbeat_at=now, progress_done=3, progress_total=10,
        progress_message="working", params={"steps": 10},
    )  # fmt: skip
    schedule = services.schedule_save(
        ScheduleDefinition(
            name="csp schedule", job="demo.progress",
            timing=Timing(Kind.CRONTAB, cron="30 2 * * 1-5", timezone="Europe/Berlin"),
            params={"steps": 5}, description="nightly",
        ),
        actor=Actor(user=boss),
    )  # fmt: skip
    TaskResult.objects.create(
        task_id=done.task_id,
        status="FAILURE",
        result='{"exc_type": "RuntimeError"}',
        traceback="Traceback (most recent call last):\n  boom",
    )
    AuditEntry.objects.create(
        actor_label="boss", action="run.launch", target_type="run", target_id=done.task_id,
        details={"params": {"failure_rate": 1.0}},
    )  # fmt: skip
    return done, active, schedule


def test_the_dashboard_pages_and_their_htmx_swaps_keep_to_the_policy(
    csp: CspWatch, boss_page: Page, boss: User, broker: str
) -> None:
    page = boss_page
    done, active, schedule = make_data(boss)
    csp.check("the login page and the overview it led to")

    for url in ("/", "/jobs/", "/jobs/demo.progress/", "/runs/", f"/runs/{done.task_id}/",
                "/runs/retry-failed/?job=demo.flaky", "/audit/", "/schedules/",
                f"/schedules/{schedule.pk}/", f"/schedules/{schedule.pk}/delete/"):  # fmt: skip
        csp.visit(url)

    # Regions htmx swaps in: the active run's status, the workers panel loaded after the page.
    page.goto(f"/runs/{active.task_id}/")
    page.evaluate("window.__swaps = 0; document.body.addEventListener('htmx:afterSwap', () => "
                  "{ window.__swaps += 1; })")  # fmt: skip
    wait_for_js(page, "window.__swaps >= 2")
    csp.check("the active run's page, after htmx swaps")
    page.goto("/workers/")
    expect(page.locator("#panel")).not_to_contain_text("Asking the broker", timeout=20_000)
    csp.check("the workers page, after its panel loaded")

    # The editor: the job's parameter form and the preview are swapped in as you type.
    page.goto("/schedules/new/")
    page.get_by_label("Job").select_option("demo.progress")
    expect(page.locator("#job-params input[name='param-steps']")).to_be_visible()
    page.get_by_label("Cron expression").fill("30 2 * * 1-5")
    expect(page.locator("#preview")).to_contain_text("At 02:30")
    page.get_by_label("Every…").check()
    expect(page.locator("input[name='every']")).to_be_visible()
    csp.check("the schedule editor, after htmx swaps")
    csp.visit(f"/schedules/{schedule.pk}/edit/")

    # API tokens: the list, then a token created (shown once).
    csp.visit("/tokens/")
    page.get_by_label("Name").fill("csp")
    page.get_by_role("button", name=re.compile("Create")).click()
    expect(page.locator("main")).to_contain_text("tdk_")
    csp.check("the tokens page with a new token")

    # The API's docs: Swagger UI from ninja's static files renders the operations.
    page.goto("/api/v1/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=20_000)
    page.locator(".swagger-ui .opblock-summary").first.click()
    expect(page.locator(".swagger-ui .opblock-body").first).to_be_visible()
    csp.check("the API docs")


def admin_urls() -> list[str]:
    """Every registered model's changelist and add page."""
    urls = ["/admin/"]
    for model in admin.site._registry:
        meta = model._meta
        urls.append(f"/admin/{meta.app_label}/{meta.model_name}/")
        urls.append(f"/admin/{meta.app_label}/{meta.model_name}/add/")
    return sorted(set(urls))


def test_the_admin_keeps_to_the_policy(
    csp: CspWatch, boss_page: Page, boss: User, broker: str
) -> None:
    page = boss_page
    done, _, schedule = make_data(boss)
    for url in admin_urls():
        csp.visit(url)
    for url in (
        f"/admin/tasks_app/run/{done.pk}/change/",
        f"/admin/django_celery_beat/periodictask/{schedule.pk}/change/",
        f"/admin/auth/user/{boss.pk}/change/",
        f"/admin/auth/user/{boss.pk}/password/",
        "/admin/django_celery_beat/periodictask/add/?plain=1",
    ):
        csp.visit(url)

    # The PeriodicTask form: the job chooser swaps in the job's parameter form (htmx), the
    # crontab chooser says the crontab in words, the calendar and clock widgets open.
    page.goto("/admin/django_celery_beat/periodictask/add/")
    page.locator("#id_job").select_option("demo.progress")
    expect(page.locator("#job-params input[name='param-steps']")).to_be_visible()
    page.locator("#id_name").fill("from the admin")
    crontab = page.locator("#id_crontab")
    crontab.select_option(index=1)
    expect(page.locator(".field-crontab .crontab-in-words")).to_contain_text("Translation:")
    page.locator("#calendarlink0").click()
    expect(page.locator("#calendarbox0")).to_be_visible()
    csp.check("the PeriodicTask add form, after its widgets ran")
    page.locator("input[name='_save']").click()
    expect(page.locator(".messagelist")).to_contain_text("from the admin")
    csp.check("the PeriodicTask changelist after saving")
    assert PeriodicTask.objects.filter(name="from the admin").exists()


def test_the_login_403_and_lockout_pages_keep_to_the_policy(
    csp: CspWatch, page: Page, transactional_db: None
) -> None:
    User.objects.create_user("visitor", password="x-Secret-123")
    csp.visit("/login/")
    csp.visit("/admin/login/")
    log_in(page, "visitor")
    csp.visit("/")  # 403: not staff
    page.goto("/login/")
    page.get_by_role("button", name="Log out").click()
    for _ in range(5):
        log_in(page, "visitor", "wrong-password")
    expect(page.get_by_role("heading", level=1)).to_have_text("Too many failed logins")
    csp.check("the lockout page")


def test_the_watch_sees_a_violation(csp: CspWatch, boss_page: Page) -> None:
    """The checks above can fail: an inline script, an inline style and eval are all caught."""
    page = boss_page
    page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.__ran = 1";
        document.head.append(script);
        document.body.setAttribute("style", "color: red");
        document.body.dispatchEvent(new CustomEvent("htmx:evalDisallowedError", {bubbles: true}));
    }""")
    wait_for_js(page, "window.__csp.length >= 3")

    assert page.evaluate("typeof window.__ran") == "undefined"
    with pytest.raises(AssertionError, match="script-src-elem blocked inline"):
        csp.check("a page with an injected inline script")


def test_polling_pauses_while_the_tab_is_hidden(csp: CspWatch, boss_page: Page, boss: User) -> None:
    """The visibility rule htmx's eval-based trigger filter used to express, now in
    taskdeck.js: a polling region asks nothing while the tab is hidden, and resumes after."""
    page = boss_page
    _, active, _ = make_data(boss)
    polls: list[str] = []
    page.on(
        "request",
        lambda request: polls.append(request.url) if request.headers.get("hx-request") else None,
    )
    page.goto(f"/runs/{active.task_id}/")
    page.wait_for_timeout(2_500)
    assert len(polls) >= 2, polls  # once a second while visible

    page.evaluate("""() => {
        window.__visibility = "hidden";
        Object.defineProperty(document, "visibilityState", {get: () => window.__visibility});
    }""")
    page.wait_for_timeout(300)  # a request already on its way may still land
    hidden_from = len(polls)
    page.wait_for_timeout(3_000)
    assert len(polls) == hidden_from, polls[hidden_from:]

    page.evaluate("window.__visibility = 'visible'")
    page.wait_for_timeout(2_500)
    assert len(polls) >= hidden_from + 2
    csp.check("the run page, polling")
    Run.objects.filter(pk=active.pk).update(state=RunState.FAILURE, finished_at=timezone.now())
