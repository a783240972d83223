"""The time display in Chromium: the header's toggle shows every time on the page relative,
in the browser's zone or in UTC, at once and after htmx swaps in new rows; the choice is stored
for the user (it holds after a reload, in another browser, and not for anyone else); the other
renderings stay on hover; without JavaScript the toggle still works and the server's text
reads correctly."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from django.contrib.auth.models import User
from django.db import close_old_connections
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from tasks_app import services
from tasks_app.models import RunState, UserPreference
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing
from tasks_app.services import Actor
from tasks_app.services import preferences as services_preferences
from tests.browser.conftest import PASSWORD, log_in, open_context, wait_for_js
from tests.support import ledger

ZONE = "Asia/Kolkata"  # the browser's zone in these tests: +05:30, no daylight saving
UTC_TEXT = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC$")
RELATIVE_TEXT = re.compile(r"^(just now|\d+ (s|min|h|d) ago|in \d+ (s|min|h|d))$")
# Every <time> the page shows, as [datetime, text, title, the mode it was rendered in].
TIMES = (
    "[...document.querySelectorAll('time[datetime]')].map((t) => "
    "[t.getAttribute('datetime'), t.textContent, t.title, t.dataset.timeShown || ''])"
)


def times(page: Page) -> list[list[str]]:
    found = page.evaluate(TIMES)
    assert found, f"no <time> on {page.url}"
    return [[str(part) for part in row] for row in found]


def all_shown(page: Page, mode: str) -> None:
    wait_for_js(
        page,
        f"document.body.dataset.timeDisplay === {mode!r} && "
        f"[...document.querySelectorAll('time[datetime]')].every("
        f"(t) => t.dataset.timeShown === {mode!r})",
    )


def in_zone(iso: str, zone: str) -> str:
    return datetime.fromisoformat(iso).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def stored(user: User) -> str | None:
    close_old_connections()
    return UserPreference.objects.filter(user=user).values_list("time_display", flat=True).first()


def toggle(page: Page, label: str) -> None:
    page.get_by_role("group", name="Times").get_by_role("button", name=label).click()


def test_toggle_renders_every_time_and_is_remembered_for_the_user(
    browser: Browser, live_server: LiveServer, boss: User
) -> None:
    ledger.make_run(RunState.FAILURE, minutes_ago=90)
    ledger.make_run(RunState.PROGRESS, job_name="demo.progress", minutes_ago=5)  # polls
    alice = User.objects.create_user("alice", password=PASSWORD, is_staff=True)
    context = open_context(browser, live_server, timezone_id=ZONE, locale="en-US")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, boss.username)
    page.goto("/runs/")

    all_shown(page, "relative")  # the default
    for iso, text, title, _ in times(page):
        assert RELATIVE_TEXT.match(text), text
        assert f"{in_zone(iso, ZONE)} GMT+5:30" in title  # the absolute time on hover
        assert f"{in_zone(iso, 'UTC')} UTC" in title

    toggle(page, "UTC")
    all_shown(page, "utc")
    expect(page.get_by_role("button", name="UTC")).to_have_attribute("aria-pressed", "true")
    expect(page.get_by_role("button", name="Relative")).to_have_attribute("aria-pressed", "false")
    for iso, text, title, _ in times(page):
        assert text == f"{in_zone(iso, 'UTC')} UTC"
        assert f"{in_zone(iso, ZONE)} GMT+5:30" in title
        assert " ago" in title
    assert stored(boss) == "utc"

    # The active run's rows poll: the rows htmx swaps in are shown in UTC too.
    page.evaluate("document.getElementById('rows').dataset.old = 'yes'")
    wait_for_js(page, "document.getElementById('rows').dataset.old !== 'yes'")
    all_shown(page, "utc")
    assert all(UTC_TEXT.match(text) for _, text, _, _ in times(page))

    toggle(page, "Local time")
    all_shown(page, "local")
    for iso, text, title, _ in times(page):
        assert text == f"{in_zone(iso, ZONE)} GMT+5:30"
        assert f"{in_zone(iso, 'UTC')} UTC" in title
    assert stored(boss) == "local"

    # Remembered: after a reload, and on every page.
    page.reload()
    all_shown(page, "local")
    for url in ("/", "/jobs/", "/tokens/", "/preferences/"):
        page.goto(url)
        expect(page.locator("body")).to_have_attribute("data-time-display", "local")
    expect(page.get_by_label("Local time")).to_be_checked()

    # Per user: alice, in another browser, still sees the default.
    other = open_context(browser, live_server, timezone_id=ZONE, locale="en-US")
    alice_page = other.new_page()
    log_in(alice_page, alice.username)
    alice_page.goto("/runs/")
    all_shown(alice_page, "relative")
    assert stored(alice) is None
    other.close()
    context.close()
    assert errors == []


def test_without_javascript_the_toggle_posts_and_the_server_text_reads(
    browser: Browser, live_server: LiveServer, boss: User
) -> None:
    run = ledger.make_run(RunState.FAILURE, minutes_ago=7)
    context = open_context(browser, live_server, java_script_enabled=False)
    page = context.new_page()
    log_in(page, boss.username)
    page.goto("/runs/")
    expect(page.locator(f"time[datetime='{run.queued_at.isoformat()}']")).to_have_text(
        re.compile(r"^[78] min ago$")  # the server's text: relative, as it was rendered
    )

    with page.expect_navigation():
        toggle(page, "UTC")

    expect(page).to_have_url(re.compile(r"/runs/$"))  # back where it was posted from
    expect(page.locator("body")).to_have_attribute("data-time-display", "utc")
    expect(page.get_by_role("button", name="UTC")).to_have_attribute("aria-pressed", "true")
    assert stored(boss) == "utc"
    context.close()


def test_fire_times_keep_the_schedules_zone_with_the_rest_on_hover(
    boss_page: Page, boss: User
) -> None:
    page = boss_page
    schedule = services.schedule_save(
        ScheduleDefinition(
            name="berlin nightly", job="demo.progress",
            timing=Timing(Kind.CRONTAB, cron="30 2 * * *", timezone="Europe/Berlin"),
            params={"steps": 1},
        ),
        actor=Actor(user=boss),
    )  # fmt: skip
    services_preferences.preference_set_time_display(actor=Actor(user=boss), value="utc")

    page.goto(f"/schedules/{schedule.pk}/")
    all_shown(page, "utc")

    fire = page.locator(".fire-times time").first
    expect(fire).to_contain_text(re.compile(r"02:30 CES?T$"))  # the schedule's own zone
    title = fire.get_attribute("title") or ""
    assert re.search(r"\d{2}:30:00 UTC", title), title
    assert "in " in title  # and how soon
    # The page's other times (its change history) follow the choice.
    for _, text, _, _ in times(page):
        assert text.endswith(("CET", "CEST")) or UTC_TEXT.match(text), text
