"""Whole journeys in Chromium: launch (with an inline error first) and watch live progress,
retry a failed run, cancel a running one. The jobs run on the session's real Celery worker."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tasks_app.models import Run, RunSource, RunState
from tests.browser.conftest import RUN_TIMEOUT_MS
from tests.support.services import WorkerProcess

RUN_URL = re.compile(r"/runs/([^/]+)/$")  # JavaScript regex syntax too: expect() runs it there


def open_launch_form(page: Page, job: str) -> None:
    """From anywhere, as a user would: the Jobs page, then the job's Launch… button."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Jobs")
    row = page.get_by_role("row").filter(has=page.locator("code", has_text=re.compile(rf"^{job}$")))
    row.get_by_role("link", name="Launch…").click()
    expect(page).to_have_url(re.compile(rf"/jobs/{re.escape(job)}/$"))


def submit_launch(page: Page) -> None:
    page.get_by_role("button", name="Launch").click()


def task_id_of(page: Page) -> str:
    """The task id of the run page the browser is on (waits until it is on one)."""
    expect(page).to_have_url(RUN_URL)
    match = RUN_URL.search(page.url)
    assert match is not None
    return match[1]


def state_of(page: Page) -> str:
    value = page.locator("#live [data-state]").get_attribute("data-state")
    assert value is not None
    return value


def launch_and_land(page: Page, job: str, **params: str) -> str:
    """Fill the job's form, launch, and return the task id of the run page it lands on."""
    open_launch_form(page, job)
    for name, value in params.items():
        page.locator(f"#id_{name}").fill(value)
    submit_launch(page)
    task_id = task_id_of(page)
    expect(page.get_by_role("status").filter(has_text="Launched")).to_be_visible()
    return task_id


def test_htmx_loads_from_the_live_server(boss_page: Page) -> None:
    """htmx is served by django-htmx from static files; without it no page would update."""
    htmx = boss_page.evaluate("typeof htmx")
    version = boss_page.evaluate("typeof htmx === 'object' ? htmx.version : null")

    assert htmx == "object", "htmx did not load: check {% htmx_script %} and static serving"
    assert str(version).startswith("2."), version


def test_launch_with_an_inline_error_then_watch_it_finish_without_a_reload(
    boss_page: Page, live_worker: WorkerProcess
) -> None:
    page = boss_page
    open_launch_form(page, "demo.progress")
    steps = page.get_by_label("Steps", exact=True)
    step_seconds = page.get_by_label("Step seconds", exact=True)

    # An invalid value: the form comes back with the error next to the field, input kept.
    steps.fill("0")
    step_seconds.fill("0.1")
    with page.expect_navigation() as sent:
        submit_launch(page)
    response = sent.value
    assert response is not None
    assert response.status == 400
    expect(page).to_have_url(re.compile(r"/jobs/demo\.progress/$"))
    field = page.locator(".field").filter(has=page.locator("#id_steps"))
    expect(field.get_by_role("alert")).to_have_text(
        "Ensure this value is greater than or equal to 1."
    )
    expect(steps).to_have_value("0")
    expect(step_seconds).to_have_value("0.1")
    expect(steps).to_have_attribute("aria-invalid", "true")
    assert not Run.objects.exists()

    # Fixed: the browser lands on the new run's page.
    steps.fill("20")
    submit_launch(page)
    task_id = task_id_of(page)
    run = Run.objects.get(task_id=task_id)
    assert (run.job_name, run.params, run.source, run.actor_label) == (
        "demo.progress", {"steps": 20, "step_seconds": 0.1}, RunSource.FORM, "boss",
    )  # fmt: skip
    expect(page.get_by_role("heading", level=1)).to_have_text("Demo: progress")

    # Progress arrives by htmx swaps of #live, never by reloading the page.
    page.evaluate(
        """() => {
            window.__marker = 1;
            window.__swaps = 0;
            document.body.addEventListener('htmx:afterSwap', () => { window.__swaps += 1; });
        }"""
    )
    assert state_of(page) != RunState.SUCCESS, "the run ended before the page could watch it"
    expect(page.locator("#live span.percent")).to_have_attribute(
        "data-percent", "100", timeout=RUN_TIMEOUT_MS
    )
    expect(page.locator("#live [data-state]")).to_have_text("Succeeded")
    expect(page.locator("#run-progress")).to_have_attribute("value", "100")
    assert page.evaluate("window.__marker") == 1, "the page was reloaded"
    assert page.evaluate("window.__swaps") >= 1
    # A finished run's region no longer polls.
    assert page.locator("#live").get_attribute("hx-trigger") is None


def test_retry_a_failed_run_links_the_new_run_to_the_old(
    boss_page: Page, live_worker: WorkerProcess
) -> None:
    page = boss_page
    failed_id = launch_and_land(page, "demo.flaky", failure_rate="1")

    expect(page.locator("#live [data-state]")).to_have_text("Failed", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#live .error-text")).to_contain_text("demo.flaky failed")
    page.get_by_role("button", name="Retry", exact=True).click()

    retry_id = task_id_of(page)
    assert retry_id != failed_id
    expect(page.get_by_role("status")).to_contain_text("Retry queued.")
    lineage = page.locator("section[aria-labelledby=lineage]")
    expect(lineage).to_contain_text(f"Retry of {failed_id}")
    back = lineage.get_by_role("link", name=failed_id, exact=True)
    expect(back).to_have_attribute("href", f"/runs/{failed_id}/")
    retry = Run.objects.get(task_id=retry_id)
    assert (retry.retry_of_id, retry.source) == (Run.objects.get(task_id=failed_id).pk, "retry")

    # It fails as well (failure_rate=1); then the old run's page lists the new one.
    expect(page.locator("#live [data-state]")).to_have_text("Failed", timeout=RUN_TIMEOUT_MS)
    back.click()
    assert task_id_of(page) == failed_id
    retried_by = page.locator("section[aria-labelledby=lineage] p", has_text="Retried by")
    expect(retried_by.get_by_role("link")).to_have_attribute("href", f"/runs/{retry_id}/")


def test_cancel_a_running_run(boss_page: Page, live_worker: WorkerProcess) -> None:
    page = boss_page
    task_id = launch_and_land(page, "demo.progress", steps="200", step_seconds="0.1")

    expect(page.locator("#live [data-state]")).to_have_text("Running", timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name="Cancel run").click()

    assert task_id_of(page) == task_id
    expect(page.get_by_role("status")).to_contain_text("Cancelling")
    expect(page.locator("#live [data-state]")).to_have_text("Cancelled", timeout=RUN_TIMEOUT_MS)
    percent = page.locator("#live span.percent").get_attribute("data-percent")
    assert percent is not None
    assert int(percent) < 100
    expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    run = Run.objects.get(task_id=task_id)
    assert run.state == RunState.REVOKED
    assert run.progress_done is not None
    assert run.progress_done < 200
    assert run.cancel_requested_by == "boss"
