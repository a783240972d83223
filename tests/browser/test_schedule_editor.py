"""The schedule editor in Chromium: the preview follows the cron expression as it is typed
(htmx), the chosen job's parameter fields swap in, only the chosen kind's fields show, and an
inline error is fixed in place before the schedule is saved."""

from __future__ import annotations

import json
import re

from django_celery_beat.models import PeriodicTask
from playwright.sync_api import Page, expect

from tests.browser.test_screenshots import shoot


def open_editor(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Schedules").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Schedules")
    page.get_by_role("link", name="New schedule").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("New schedule")


def test_preview_follows_typing_and_the_job_form_swaps_in(boss_page: Page) -> None:
    page = boss_page
    open_editor(page)
    page.evaluate("window.__editorMarker = 1")  # survives only if nothing reloads the page
    preview = page.locator("#preview")

    page.get_by_label("Time zone").select_option("Europe/Berlin")
    page.get_by_label("Cron expression").fill("30 2 * * 1-5")
    expect(preview).to_contain_text("At 02:30, Monday through Friday")
    expect(preview.locator("li")).to_have_count(5)
    expect(preview.locator("li").first).to_contain_text(re.compile(r"CES?T"))

    page.get_by_label("Name").fill("weekday report")
    page.get_by_label("Job").select_option("demo.progress")
    expect(page.locator("#job-params input[name='param-steps']")).to_be_visible()
    shoot(page, "schedule-editor.png")

    page.get_by_label("Cron expression").fill("0 0 31 2 *")
    expect(preview).to_contain_text("never fires")

    page.get_by_label("Job").select_option("demo.flaky")
    expect(page.locator("#job-params")).to_contain_text("Failure rate")
    page.get_by_label("Job").select_option("demo.progress")
    expect(page.locator("#job-params input[name='param-steps']")).to_be_visible()

    # Only the chosen kind's fields are shown.
    page.get_by_label("Every…").check()
    expect(page.get_by_label("Cron expression")).to_be_hidden()
    expect(page.locator("input[name='every']")).to_be_visible()
    page.locator("input[name='every']").fill("5")
    expect(preview).to_contain_text("Every 5 minutes")
    assert page.evaluate("window.__editorMarker") == 1


def test_an_inline_error_is_fixed_then_the_schedule_saves(boss_page: Page) -> None:
    page = boss_page
    open_editor(page)
    page.get_by_label("Name").fill("weekday report")
    page.get_by_label("Job").select_option("demo.progress")
    expect(page.locator("#job-params input[name='param-steps']")).to_be_visible()
    page.locator("input[name='param-steps']").fill("0")
    page.get_by_label("Cron expression").fill("30 2 * * 1-5")
    page.get_by_role("button", name="Create schedule").click()

    expect(page.locator("#job-params .error")).to_contain_text("greater than or equal to 1")
    expect(page.get_by_label("Name")).to_have_value("weekday report")
    page.locator("input[name='param-steps']").fill("12")
    page.get_by_role("button", name="Create schedule").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("weekday report")
    expect(page.get_by_role("status")).to_contain_text("Created schedule")
    task = PeriodicTask.objects.get(name="weekday report")
    assert json.loads(task.kwargs)["steps"] == 12
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Schedules").click()
    expect(page.get_by_role("link", name="weekday report")).to_be_visible()
    shoot(page, "schedules.png")
