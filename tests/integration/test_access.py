"""Every non-static URL is for staff only: anonymous -> login page, signed-in non-staff -> 403."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

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


URLS = sorted(set(all_urls()))


def test_the_enumeration_finds_the_pages_that_exist() -> None:
    assert "/" in URLS
    assert "/admin/" in URLS
    assert "/admin/django_celery_results/taskresult/" in URLS
    assert "/admin/django_celery_beat/periodictask/" in URLS
    assert len(URLS) > 30


@pytest.mark.django_db
@pytest.mark.parametrize("url", [u for u in URLS if u not in LOGIN_PAGES])
def test_anonymous_visitor_is_sent_to_the_login_page(client: Client, url: str) -> None:
    response = client.get(url)

    assert response.status_code == 302, url
    assert response["Location"].split("?next=")[0] in LOGIN_PAGES, response["Location"]


@pytest.mark.django_db
@pytest.mark.parametrize("url", [u for u in URLS if u not in LOGIN_PAGES | LOGOUT_PAGES])
def test_signed_in_user_who_is_not_staff_is_refused(client: Client, url: str) -> None:
    client.force_login(User.objects.create_user("visitor", password="x-Secret-123"))

    assert client.get(url).status_code == 403, url


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
