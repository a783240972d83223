"""Run again with changes, in Chromium: launch a job with a secret, watch it finish, open "Run
again with changes" (the form filled in, the secret's field empty), change a value, and land
on the new run's page, which says what changed and runs with the kept secret on the real
worker. The secret is never in any page the browser gets."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tasks_app.models import Run, RunSource
from tests.browser.conftest import RUN_TIMEOUT_MS
from tests.browser.test_journeys import launch_and_land, task_id_of
from tests.support.services import WorkerProcess

SECRET = "rerun-browser-S3cret"


def test_run_again_with_a_changed_label_keeps_the_secret(
    boss_page: Page, live_worker: WorkerProcess
) -> None:
    page = boss_page
    first_id = launch_and_land(page, "demo.sensitive", password=SECRET, label="first")
    expect(page.locator("#live [data-state]")).to_have_text("Succeeded", timeout=RUN_TIMEOUT_MS)

    # The link arrives with the live region's last swap, without a reload.
    page.get_by_role("link", name="Run again with changes").click()
    expect(page).to_have_url(re.compile(rf"/runs/{re.escape(first_id)}/rerun/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Run again: Demo: sensitive parameter"
    )
    password = page.get_by_label("Password")
    label = page.get_by_label("Label")
    expect(password).to_have_value("")
    expect(password).to_have_attribute("placeholder", re.compile("leave empty to keep"))
    expect(label).to_have_value("first")
    assert SECRET not in page.content()
    label.fill("second <b>bold</b>")
    page.get_by_role("button", name="Run again").click()

    new_id = task_id_of(page)
    assert new_id != first_id
    expect(page.get_by_role("status")).to_contain_text("again, with your changes")
    changes = page.locator("section[aria-labelledby=changes]")
    expect(changes.get_by_role("heading")).to_have_text("Changes from the run it re-ran")
    label_row = changes.locator("tr[data-param=label]")
    expect(label_row).to_contain_text("changed")
    expect(label_row).to_contain_text("first")
    expect(label_row).to_contain_text("second <b>bold</b>")  # as text: escaped, not markup
    expect(label_row.locator("b")).to_have_count(0)
    expect(changes.locator("tr[data-param=password]")).to_contain_text("unchanged")
    expect(page.locator("#live [data-state]")).to_have_text("Succeeded", timeout=RUN_TIMEOUT_MS)
    page.reload()  # the live region updates by itself; the result shows on the full page
    result = page.locator("section[aria-labelledby=result] pre")
    expect(result).to_contain_text(f'"secret_length": {len(SECRET)}')  # the kept secret opened
    expect(result).to_contain_text('"label": "second <b>bold</b>"')

    new, first = Run.objects.get(task_id=new_id), Run.objects.get(task_id=first_id)
    assert (new.retry_of_id, new.root_id, new.source) == (first.pk, first.pk, RunSource.RETRY)
    assert new.params["password"] == first.params["password"]
    assert SECRET not in page.content()
