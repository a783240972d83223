"""Whatever a job or its caller produced is shown as text, never run as script: in the full
pages and in the regions htmx swaps in while a run is active."""

from __future__ import annotations

from django.utils import timezone
from playwright.sync_api import Page, expect

from tasks_app.models import AuditEntry, Run, RunSource, RunState
from tests.browser.conftest import PageWatch, wait_for_js

IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=1</script>"
HOSTILE = f"{IMG} {SCRIPT}"
WATCH_SWAPS = """() => {
    window.__swaps = 0;
    document.body.addEventListener('htmx:afterSwap', () => { window.__swaps += 1; });
}"""


def hostile_run(task_id: str, state: RunState, **fields: object) -> Run:
    return Run.objects.create(
        task_id=task_id,
        job_name=HOSTILE,
        state=state,
        source=RunSource.SCHEDULE,
        schedule_name=HOSTILE,
        actor_label=HOSTILE,
        queue=IMG,
        worker=SCRIPT,
        queued_at=timezone.now(),
        started_at=timezone.now(),
        params={"note": HOSTILE, SCRIPT: [IMG]},
        error=HOSTILE,
        progress_done=3,
        progress_total=10,
        progress_message=HOSTILE,
        log=[{"at": "2026-01-01T00:00:00", "message": HOSTILE}],
        **fields,
    )


def assert_no_script_ran(page: Page, watch: PageWatch, where: str) -> None:
    assert page.evaluate("typeof window.__xss") == "undefined", f"script ran on {where}"
    assert watch.dialogs == [], f"a dialog opened on {where}: {watch.dialogs}"
    assert page.locator("img[src=x]").count() == 0, f"an injected image on {where}"


def test_hostile_strings_are_shown_as_text_and_never_run(
    boss_page: Page, page_watch: PageWatch
) -> None:
    page = boss_page
    failed = hostile_run("hostile-failed", RunState.FAILURE, finished_at=timezone.now())
    running = hostile_run("hostile-running", RunState.PROGRESS, heartbeat_at=timezone.now())
    AuditEntry.objects.create(
        actor_label=HOSTILE, action="run.launch", target_type="run",
        target_id=failed.task_id, details={"params": {"note": HOSTILE}},
    )  # fmt: skip

    # The finished run's page: every field at once, as text.
    page.goto(f"/runs/{failed.task_id}/")
    expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE)
    expect(page.locator("#live .error-text")).to_have_text(HOSTILE)
    expect(page.locator("#live .progress-message")).to_have_text(HOSTILE)
    expect(page.locator("ol.log li")).to_contain_text(HOSTILE)
    expect(page.locator("section[aria-labelledby=params]")).to_contain_text(SCRIPT)
    assert_no_script_ran(page, page_watch, "the failed run's page")

    # The active run's page: its status region is swapped in by htmx every second.
    page.goto(f"/runs/{running.task_id}/")
    page.evaluate(WATCH_SWAPS)
    wait_for_js(page, "window.__swaps >= 2")
    expect(page.locator("#live .progress-message")).to_have_text(HOSTILE)
    assert_no_script_ran(page, page_watch, "the running run's page, after htmx swaps")

    # The runs list (its rows poll while a run is active), the overview and the audit trail.
    page.goto("/runs/")
    expect(page.locator("#rows tr")).to_have_count(2)
    page.evaluate(WATCH_SWAPS)
    wait_for_js(page, "window.__swaps >= 1")
    expect(page.locator("#rows tr").first).to_contain_text(HOSTILE)
    assert_no_script_ran(page, page_watch, "the runs list")

    page.goto("/")
    expect(page.locator("#active-runs")).to_contain_text(HOSTILE)
    page.evaluate(WATCH_SWAPS)
    wait_for_js(page, "window.__swaps >= 1")
    expect(page.locator("section[aria-labelledby=failures-title]")).to_contain_text(IMG)
    assert_no_script_ran(page, page_watch, "the overview")

    page.goto("/audit/")
    expect(page.locator("tbody tr").first).to_contain_text(HOSTILE)
    assert_no_script_ran(page, page_watch, "the audit trail")

    # Nothing is left "running": no worker ever had this run.
    Run.objects.filter(pk=running.pk).update(state=RunState.FAILURE, finished_at=timezone.now())
