"""Browser fixtures: Chromium driven by Playwright (sync API) against pytest-django's live
server, with the session's real Celery worker running the jobs. Which Chromium (the system's
/usr/bin/chromium, CHROMIUM_EXECUTABLE, or Playwright's own build) is tests/support/chromium.py's
choice.

Playwright's sync API keeps an asyncio event loop running in the main thread while it is
started, and Django refuses ORM calls from a thread with a running loop ("You cannot call this
from an async context"). The `browser` fixture therefore allows them (DJANGO_ALLOW_ASYNC_UNSAFE)
only while Playwright runs, and the browser tests are ordered last, so no other test ever runs
with that check off or with the loop running.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import close_old_connections
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Dialog,
    Error,
    Page,
    Playwright,
    Response,
    ViewportSize,
    expect,
    sync_playwright,
)
from pytest_django.live_server_helper import LiveServer

from tasks_app import services
from tasks_app.models import ACTIVE_STATES, Run
from tests.support.chromium import ChromiumUnavailable, Source, choose_chromium
from tests.support.runs import operator
from tests.support.services import WorkerProcess, wait_for

VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
PASSWORD = "x-Secret-123"
# Waits on the page (milliseconds): generous for a loaded CI machine, but bounded.
ACTION_TIMEOUT_MS = 15_000
RUN_TIMEOUT_MS = 30_000
BROWSER_DIR = Path(__file__).resolve().parent

expect.set_options(timeout=ACTION_TIMEOUT_MS)  # the default of 5 s is short for a loaded CI


@pytest.hookimpl(trylast=True)  # after pytest-django's own ordering
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests after every other test (keeping pytest-django's order otherwise):
    while Playwright runs, the main thread has a running event loop (see the module docstring)."""
    browser_items = [item for item in items if BROWSER_DIR in item.path.parents]
    if browser_items:
        others = [item for item in items if BROWSER_DIR not in item.path.parents]
        items[:] = others + browser_items


def launch_chromium(playwright: Playwright) -> Browser:
    """The Chromium tests/support/chromium.py chooses, started. Fails the test with what to do
    when there is none or it does not start (outside the `except`, so it is said once)."""
    try:
        choice = choose_chromium(Path(playwright.chromium.executable_path))
    except ChromiumUnavailable as error:
        problem = str(error)
    else:
        try:
            return playwright.chromium.launch(
                executable_path=choice.executable, headless=True, args=list(choice.args)
            )
        except Error as error:
            hint = (
                " Its system libraries may be missing: `.venv/bin/playwright install-deps "
                "chromium` (as root) installs them."
                if choice.source is Source.PLAYWRIGHT
                else ""
            )
            problem = f"The {choice.describe()} did not start: {error}{hint}"
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def browser(django_db_setup: None) -> Iterator[Browser]:
    """One Chromium for the session. Requests the test database first, so that Playwright (and
    its event loop) is stopped before the database is torn down."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = launch_chromium(playwright)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@dataclass
class PageWatch:
    """What a page did that a test may want to assert on: uncaught script errors, dialogs."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


def open_context(browser: Browser, live_server: LiveServer, **options: object) -> BrowserContext:
    """A fresh context (own cookies and storage) on the live server, 1280x900."""
    context = browser.new_context(
        base_url=live_server.url,
        viewport=VIEWPORT,
        **options,  # type: ignore[arg-type]  # keyword options of new_context, e.g. color_scheme
    )
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(ACTION_TIMEOUT_MS)
    return context


@pytest.fixture
def page_watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def page(browser: Browser, live_server: LiveServer, page_watch: PageWatch) -> Iterator[Page]:
    """A new context and page per test. An uncaught script error on any page fails the test;
    a dialog (alert/confirm) is recorded and dismissed."""
    context = open_context(browser, live_server)
    tab = context.new_page()
    tab.on("pageerror", lambda error: page_watch.errors.append(str(error)))

    def on_dialog(dialog: Dialog) -> None:
        page_watch.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    yield tab
    context.close()
    if page_watch.errors:
        pytest.fail(f"Script errors in the page: {page_watch.errors}")


def wait_for_js(page: Page, expression: str, timeout_ms: float = ACTION_TIMEOUT_MS) -> None:
    """Wait until `expression` is truthy in the page. Playwright's own `wait_for_function`
    evaluates its predicate with eval inside the page, which the Content-Security-Policy refuses
    (no 'unsafe-eval'); `evaluate` runs it from outside, as the browser's devtools do."""
    deadline = time.monotonic() + timeout_ms / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"Still false after {timeout_ms / 1000:.0f} s: {expression}")
        page.wait_for_timeout(100)


@pytest.fixture
def boss(transactional_db: None) -> User:
    """A superuser, committed, so the live server and the worker see it."""
    return User.objects.create_superuser("boss", "boss@example.com", PASSWORD)


def log_in(page: Page, username: str, password: str = PASSWORD) -> Response:
    """Sign in through the real login form; returns the response of the page it lands on."""
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation() as landing:
        page.get_by_role("button", name="Log in").click()
    response = landing.value
    assert response is not None, "the login form led nowhere"
    return response


@pytest.fixture
def boss_page(page: Page, boss: User, live_server: LiveServer) -> Page:
    """The page, signed in as the superuser, on the Overview."""
    response = log_in(page, boss.username)
    assert response.status == 200
    assert re.fullmatch(rf"{re.escape(live_server.url)}/", page.url), page.url
    return page


def active_runs() -> list[Run]:
    close_old_connections()
    return list(Run.objects.filter(state__in=ACTIVE_STATES))


@pytest.fixture
def live_worker(worker: WorkerProcess) -> Iterator[WorkerProcess]:
    """The session's real worker; afterwards, nothing may still be queued or running: the test
    fails if a run is still active 30 s after it ended (such runs are terminated first, so
    none outlives its test and meets another test's data)."""
    yield worker
    try:
        wait_for(lambda: not active_runs(), timeout=RUN_TIMEOUT_MS / 1000)
    except AssertionError:
        left = active_runs()
        for run in left:
            services.run_cancel(run, actor=operator(), terminate=True)
        wait_for(lambda: not active_runs(), timeout=RUN_TIMEOUT_MS / 1000)
        pytest.fail(f"Runs still active after the test: {[(r.task_id, r.state) for r in left]}")
