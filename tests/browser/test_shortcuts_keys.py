"""Keyboard shortcuts in Chromium: "/" focuses the page's filter box, "j"/"k" move a visible
selection through the table's rows (kept when htmx replaces the rows), Enter and "o" open the
selected row, "?" shows the list of shortcuts and Esc closes it; nothing fires while typing in a
field or with a modifier held."""

from __future__ import annotations

import re

from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from tasks_app.models import Run, RunState
from tests.browser.conftest import wait_for_js
from tests.support import ledger

SELECTED_HREF = (
    "(() => { const row = document.querySelector('main tr.kbd-selected');"
    " return row ? row.querySelector('a[href]').getAttribute('href') : null; })()"
)
FOCUSED_HREF = "document.activeElement ? document.activeElement.getAttribute('href') : null"


def runs(boss: User) -> list[Run]:
    """Three finished runs and, newest, one still running (so the runs list polls): newest
    first, as the list shows them."""
    made = [ledger.make_run(RunState.FAILURE, minutes_ago=m) for m in (3, 2, 1)]
    active = ledger.make_run(RunState.PROGRESS, job_name="demo.progress", minutes_ago=0)
    return [active, *reversed(made)]


def href(run: Run) -> str:
    return f"/runs/{run.task_id}/"


def selected(page: Page) -> str | None:
    value = page.evaluate(SELECTED_HREF)
    return None if value is None else str(value)


def test_slash_focuses_the_filter_and_typing_there_is_not_a_shortcut(
    boss_page: Page, boss: User
) -> None:
    page = boss_page
    runs(boss)
    page.goto("/runs/")

    page.keyboard.press("/")
    search = page.locator("#id_q")
    expect(search).to_be_focused()
    page.keyboard.type("jk/o?")

    expect(search).to_have_value("jk/o?")  # typed, not taken as shortcuts
    assert selected(page) is None
    expect(page.locator("#shortcuts-help")).not_to_be_visible()


def test_j_k_select_rows_and_enter_opens_one_after_an_htmx_swap(
    boss_page: Page, boss: User
) -> None:
    page = boss_page
    shown = runs(boss)
    page.goto("/runs/")
    expect(page.locator("#rows tr")).to_have_count(4)

    page.keyboard.press("j")
    assert selected(page) == href(shown[0])
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert selected(page) == href(shown[2])
    page.keyboard.press("k")
    assert selected(page) == href(shown[1])
    assert page.evaluate(FOCUSED_HREF) == href(shown[1])  # the selection has the focus
    expect(page.locator("main tr.kbd-selected")).to_have_count(1)
    page.keyboard.press("Alt+j")  # with a modifier: not a shortcut
    page.keyboard.press("Control+k")
    assert selected(page) == href(shown[1])

    # The list polls (a run is active): htmx replaces the rows; the selection and focus stay.
    page.evaluate("document.getElementById('rows').dataset.old = 'yes'")
    wait_for_js(page, "document.getElementById('rows').dataset.old !== 'yes'")
    wait_for_js(page, f"({SELECTED_HREF}) === {href(shown[1])!r}")
    wait_for_js(page, f"({FOCUSED_HREF}) === {href(shown[1])!r}")
    page.keyboard.press("j")
    assert selected(page) == href(shown[2])

    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(href(shown[2])) + "$"))


def test_o_opens_the_selected_row_on_any_table(boss_page: Page, boss: User) -> None:
    page = boss_page
    runs(boss)
    page.goto("/")  # the overview's tables: no template names its rows for this

    page.keyboard.press("j")
    first = selected(page)
    assert first is not None
    page.evaluate("document.activeElement.blur()")  # the focus elsewhere: "o" still opens
    page.keyboard.press("o")

    expect(page).to_have_url(re.compile(re.escape(first) + "$"))


def test_question_mark_shows_the_shortcuts_and_escape_closes_them(
    boss_page: Page, boss: User
) -> None:
    page = boss_page
    runs(boss)
    page.goto("/runs/")
    page.keyboard.press("j")
    before = page.evaluate(FOCUSED_HREF)

    page.keyboard.press("?")
    dialog = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Open the selected row")
    page.keyboard.press("j")  # keys while it is open are the dialog's own
    assert selected(page) == before
    page.keyboard.press("Escape")

    expect(dialog).not_to_be_visible()
    assert page.evaluate(FOCUSED_HREF) == before  # the focus went back where it was
    page.keyboard.press("?")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).not_to_be_visible()
