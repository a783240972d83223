"""Every non-static URL is for staff only: anonymous -> login page (the JSON API: 401),
signed-in non-staff -> 403 (the API, which takes only tokens: a non-staff user's token -> 403).
The one exception is /metrics, for Prometheus, which has no session: it answers only its own
token (tests/integration/metrics/test_metrics_endpoint.py), and 404 while none is configured."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tasks_app.tokens import issue_token
from tests.support.shared_rows import module_rows, session_of, signed_in

# Pages whose job is to let you log in; they answer everybody.
LOGIN_PAGES = {"/login/", "/admin/login/"}
# ...and the pages that sign you out, which a signed-in non-staff user may still use.
LOGOUT_PAGES = {"/logout/", "/admin/logout/"}


def _sample_from_regex(regex: str) -> str:
    regex = regex.lstrip("^").rstrip("$").replace("\\Z", "").replace("\\", "")
    # (?P<name>a|b|c) -> a ; any other group or wildcard -> 1
    regex = re.sub(r"\(\?P<\w+>(\w+)\|[^)]*\)", r"\1", regex)
    regex = re.sub(r"\(\?P<\w+>[^)]*\)", "1", regex)
    return regex.replace(".*", "1")


def _sample_from_route(route: str) -> str:
    samples = {"int": "1", "str": "x", "slug": "x", "path": "x", "uuid": str(uuid.UUID(int=0))}
    return re.sub(r"<(?:(\w+):)?\w+>", lambda m: samples.get(m.group(1) or "str", "1"), route)


def _sample(pattern: URLPattern | URLResolver) -> str:
    raw = str(pattern.pattern)
    if hasattr(pattern.pattern, "_route"):
        return _sample_from_route(raw)
    return _sample_from_regex(raw)


def all_urls(
    patterns: list[URLPattern | URLResolver] | None = None, prefix: str = "/"
) -> Iterator[str]:
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        path = prefix + _sample(pattern)
        if isinstance(pattern, URLResolver):
            yield from all_urls(pattern.url_patterns, path)
        else:
            yield path


API = "/api/v1/"
URLS = sorted(set(all_urls()) - {API})  # the API's root is no page, only a prefix
# The API's operations answer for themselves in JSON; its document and docs page are pages.
API_OPERATIONS = [
    u for u in URLS if u.startswith(API) and u != API and not u.endswith(("/docs", ".json"))
]


def call(client: Client, url: str, **headers: str) -> Any:
    """GET, or for an operation that only takes writes, POST an empty JSON object."""
    response = client.get(url, headers=headers)
    if response.status_code == 405:
        response = client.post(url, "{}", content_type="application/json", headers=headers)
    return response


def test_the_enumeration_finds_the_pages_that_exist() -> None:
    assert "/" in URLS
    assert "/admin/" in URLS
    assert "/admin/django_celery_results/taskresult/" in URLS
    assert "/admin/django_celery_beat/periodictask/" in URLS
    assert len(URLS) > 30


# Scraped by Prometheus with TASKDECK_METRICS_TOKEN, never with a session.
MACHINE_ENDPOINTS = {"/metrics"}
PAGES = [u for u in URLS if u not in API_OPERATIONS and u not in MACHINE_ENDPOINTS]


@pytest.mark.django_db
@pytest.mark.parametrize("signed_in_as", ["nobody", "visitor", "staff"])
def test_metrics_answer_no_session_only_its_token(
    client: Client, settings: Any, signed_in_as: str
) -> None:
    """No session opens /metrics, not even a staff one: 404 while it is off, 401 once a token
    is set and the request does not carry it."""
    if signed_in_as != "nobody":
        user = User.objects.create_user(signed_in_as, password="x-Secret-123")
        user.is_staff = signed_in_as == "staff"
        user.save()
        client.force_login(user)

    settings.TASKDECK_METRICS_TOKEN = ""
    off = client.get("/metrics")
    settings.TASKDECK_METRICS_TOKEN = "a-metrics-token-for-tests"
    on = client.get("/metrics")

    assert off.status_code in {403, 404}, off.status_code
    assert on.status_code in {401, 403}, on.status_code
    assert b"taskdeck_" not in off.content + on.content


@pytest.mark.django_db
@pytest.mark.parametrize("url", [u for u in PAGES if u not in LOGIN_PAGES])
def test_anonymous_visitor_is_sent_to_the_login_page(client: Client, url: str) -> None:
    response = client.get(url)

    if url.endswith("/openapi.json"):
        assert response.status_code == 401, url
        return
    assert response.status_code == 302, url
    assert response["Location"].split("?next=")[0] in LOGIN_PAGES, response["Location"]


@pytest.fixture(scope="module")
def not_staff(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """The session of a signed-in user who is not staff, made once for the module's pages
    (tests.support.shared_rows)."""
    with module_rows(django_db_blocker):
        yield session_of(User.objects.create_user("not-staff", password="x-Secret-123"))


@pytest.mark.django_db
@pytest.mark.parametrize("url", [u for u in PAGES if u not in LOGIN_PAGES | LOGOUT_PAGES])
def test_signed_in_user_who_is_not_staff_is_refused(not_staff: str, url: str) -> None:
    assert signed_in(not_staff).get(url).status_code == 403, url


@pytest.mark.django_db
@pytest.mark.parametrize("url", API_OPERATIONS)
def test_api_without_a_token_is_401_even_with_a_session(client: Client, url: str) -> None:
    assert call(client, url).status_code == 401, url
    client.force_login(User.objects.create_superuser("boss", password="x-Secret-123"))
    assert call(client, url).status_code == 401, url  # cookies never act through the API


@pytest.mark.django_db
@pytest.mark.parametrize("url", API_OPERATIONS)
def test_api_token_of_a_user_who_is_not_staff_is_403(client: Client, url: str) -> None:
    raw = issue_token(User.objects.create_user("visitor", password="x-Secret-123"), "t")[1]
    assert call(client, url, Authorization=f"Bearer {raw}").status_code == 403, url


def test_every_api_operation_is_enumerated() -> None:
    assert len(API_OPERATIONS) >= 10


@pytest.mark.django_db
@pytest.mark.parametrize("url", sorted(LOGIN_PAGES))
def test_login_pages_answer_everybody(client: Client, url: str) -> None:
    response = client.get(url)

    assert response.status_code == 200
    assert b'name="password"' in response.content


@pytest.mark.django_db
def test_staff_user_logs_in_through_the_form_and_reaches_the_overview(client: Client) -> None:
    User.objects.create_user("operator", password="x-Secret-123", is_staff=True)

    response = client.post(
        "/login/", {"username": "operator", "password": "x-Secret-123", "next": "/"}, follow=True
    )

    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/"
    assert b"<h1>Overview</h1>" in response.content


@pytest.mark.django_db
def test_a_user_who_is_not_staff_can_still_sign_out(client: Client) -> None:
    client.force_login(User.objects.create_user("visitor", password="x-Secret-123"))

    response = client.post("/logout/")

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_refused_user_is_offered_a_way_out(client: Client) -> None:
    client.force_login(User.objects.create_user("visitor", password="x-Secret-123"))

    refused = client.get("/")
    login = client.get("/login/")

    assert refused.status_code == 403
    assert b"Taskdeck is for staff users only." in refused.content
    assert b">Log out</button>" in refused.content
    assert b'href="/login/"' in refused.content
    assert login.status_code == 200  # to sign in as someone else
