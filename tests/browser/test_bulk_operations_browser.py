"""Retry everything a filter matches from the runs list, in Chromium: the offer with its
count, the typed confirmation (an inline error when it does not match), then the operation's
page following the job until it is done, without a reload."""

from __future__ import annotations

import re

from django.test import override_settings
from django.utils import timezone
from playwright.sync_api import Page, expect

from tasks_app.models import BulkOperation, Run, RunState
from tests.browser.conftest import RUN_TIMEOUT_MS
from tests.support.services import WorkerProcess


@override_settings(TASKDECK_BULK_LIMIT=3)
def test_retry_all_matching_with_a_typed_count(boss_page: Page, live_worker: WorkerProcess) -> None:
    page = boss_page
    originals = [
        Run.objects.create(
            task_id=f"bulk-browser-{n}", job_name="demo.flaky", state=RunState.FAILURE,
            queued_at=timezone.now(), finished_at=timezone.now(), params={"failure_rate": 0.0},
        )
        for n in range(4)
    ]  # fmt: skip
    page.goto("/runs/?job=demo.flaky&state=FAILURE")
    offer = page.get_by_role("link", name="Retry all 4 matching…")
    expect(offer).to_be_visible()
    offer.click()

    expect(page.get_by_role("heading", level=1)).to_contain_text("Retry all failed or lost")
    count = page.get_by_label("Type the number of runs to confirm")
    count.fill("40")
    with page.expect_navigation() as sent:
        page.get_by_role("button", name="Retry all 4").click()
    assert sent.value is not None
    assert sent.value.status == 400
    expect(page.get_by_role("alert")).to_contain_text("4 runs match now, not 40: type 4.")
    assert not BulkOperation.objects.exists()

    page.get_by_label("Type the number of runs to confirm").fill("4")
    page.get_by_role("button", name="Retry all 4").click()
    expect(page).to_have_url(re.compile(r"/bulk-operations/\d+/$"))
    expect(page.locator("#bulk-state")).to_have_text("Done", timeout=RUN_TIMEOUT_MS)
    expect(page.locator("#bulk-done")).to_have_text("4")
    expect(page.locator("#bulk-progress")).to_have_attribute("value", "100")
    for original in originals:
        assert original.retried_by.count() == 1
