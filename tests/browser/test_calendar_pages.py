"""The history strip and the schedule calendar in Chromium: the strip's cells, oldest first,
name their state and time and lead to their run; the Schedules page leads to the calendar,
whose window toggles between 24 hours and 7 days and whose entries lead to their schedule."""

from __future__ import annotations

import re
from datetime import timedelta

from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from tasks_app import services
from tasks_app.models import Run, RunSource, RunState
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing
from tasks_app.services import Actor
from tests.browser.test_screenshots import shoot


def test_the_strip_and_the_calendar(boss_page: Page, boss: User) -> None:
    page = boss_page
    hourly = services.schedule_save(
        ScheduleDefinition(
            name="hourly report",
            job="demo.progress",
            timing=Timing(Kind.CRONTAB, cron="0 * * * *", timezone="Europe/Berlin"),
            params={"steps": 1},
        ),
        actor=Actor(user=boss),
    )
    now = timezone.now()
    states = [RunState.SUCCESS, RunState.FAILURE, RunState.LOST, RunState.REVOKED, RunState.PENDING]
    Run.objects.bulk_create(
        Run(task_id=f"strip-{n}", job_name="demo.progress", state=state,
            schedule_name=hourly.name, source=RunSource.SCHEDULE,
            queued_at=now - timedelta(hours=len(states) - n))
        for n, state in enumerate(states)
    )  # fmt: skip

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Schedules").click()
    strip = page.get_by_role("list", name="Last 5 runs, oldest first")
    cells = strip.get_by_role("link")
    expect(cells).to_have_count(5)
    expect(cells.first).to_have_attribute("title", re.compile(r"^Succeeded · "))
    expect(cells.nth(1)).to_have_accessible_name(re.compile(r"^Failed, queued "))
    expect(cells.nth(3)).to_have_accessible_name(re.compile(r"^Cancelled, queued "))
    shoot(page, "schedules-history-strip.png")
    cells.nth(1).click()
    expect(page).to_have_url(re.compile(r"/runs/strip-1/$"))

    page.go_back()
    page.get_by_role("link", name="Calendar").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Schedule calendar")
    window = page.get_by_role("navigation", name="Window")
    expect(window.get_by_role("link", name="Next 24 hours")).to_have_attribute(
        "aria-current", "page"
    )
    entries = page.locator(".calendar-entry").filter(has_text="hourly report")
    expect(entries).to_have_count(24)
    expect(entries.first).to_contain_text(re.compile(r"CES?T"))
    expect(entries.first).to_contain_text("UTC")

    window.get_by_role("link", name="Next 7 days").click()
    expect(window.get_by_role("link", name="Next 7 days")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("region", name="Frequent schedules")).to_contain_text("hourly report")
    expect(page.get_by_text("and 144 more in this window")).to_be_visible()
    shoot(page, "schedule-calendar.png")

    entries.first.get_by_role("link", name="hourly report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("hourly report")
    expect(page.locator("dd.missed-policy")).to_have_text("Run once for all missed runs")
    expect(page.get_by_role("list", name="Last 5 runs, oldest first")).to_be_visible()
