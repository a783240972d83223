"""Taskdeck is for staff: a visitor who is not signed in ends on a login page, a signed-in user
who is not staff is refused (403), whatever the page, the admin included."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from tests.browser.conftest import PASSWORD, log_in

MAIN_URLS = ["/", "/jobs/", "/runs/", "/workers/", "/audit/", "/admin/"]
LOGIN_PAGE = re.compile(r"/(admin/)?login/\?next=")


@pytest.fixture
def nobody(transactional_db: None) -> User:
    """Signed in, but not staff."""
    return User.objects.create_user("nobody", "nobody@example.com", PASSWORD)


def test_a_visitor_who_is_not_signed_in_ends_on_a_login_page(
    page: Page, live_server: LiveServer
) -> None:
    for url in MAIN_URLS:
        response = page.goto(url)

        assert response is not None, url
        assert response.status == 200, url
        expect(page).to_have_url(LOGIN_PAGE)
        assert page.url.startswith(live_server.url), page.url
        expect(page.get_by_label("Password")).to_be_visible()
        expect(page.get_by_role("navigation", name="Main")).to_have_count(0)


def test_a_signed_in_user_who_is_not_staff_is_refused_everywhere(
    page: Page, nobody: User, live_server: LiveServer
) -> None:
    landing = log_in(page, nobody.username)
    assert landing.status == 403, "the login form sends to the Overview, which refuses"

    for url in MAIN_URLS:
        response = page.goto(url)

        assert response is not None, url
        assert response.status == 403, (url, response.status, page.url)
        assert page.url == f"{live_server.url}{url}", "refused in place, not redirected"
        expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
