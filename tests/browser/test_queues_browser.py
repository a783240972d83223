"""Pausing and resuming a queue from the Workers & queues page in Chromium, with the real
worker: the row says who paused it and since when, and the worker stops and starts consuming."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tasks_app.models import QueuePause
from tests.support.services import WorkerProcess


def test_pause_and_resume_a_queue_from_the_page(
    boss_page: Page, live_worker: WorkerProcess
) -> None:
    page = boss_page
    page.goto("/workers/")
    low = page.locator('tr[data-queue="low"]')
    expect(low).to_contain_text("Consuming")

    with page.expect_navigation():
        page.get_by_role("button", name="Pause queue low").click()

    expect(page.get_by_role("status")).to_contain_text("Queue low paused.")
    expect(low).to_contain_text("Paused by boss since")
    # The worker no longer consumes it (the panel asks the broker every 5 s).
    expect(low.locator("td").nth(2)).to_have_text("0", timeout=30_000)
    assert QueuePause.objects.filter(queue="low", paused_by_label="boss").exists()

    with page.expect_navigation():
        page.get_by_role("button", name="Resume queue low").click()

    expect(page.get_by_role("status")).to_contain_text("Queue low resumed.")
    expect(low).to_contain_text("Consuming")
    expect(low.locator("td").nth(2)).to_have_text(re.compile(r"^[1-9][0-9]*$"), timeout=30_000)
    assert not QueuePause.objects.exists()
