"""The time display preference: the header's toggle posts to the preferences page, which stores
the choice per user (CSRF, staff only, audited), answers JSON to the page's script, and every
page renders the choice on <body> for the script to apply."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.urls import reverse

from tasks_app.models import AuditEntry, TimeDisplay, UserPreference
from tasks_app.services import Actor
from tasks_app.services import preferences as preference_services

pytestmark = pytest.mark.django_db

URL = "/preferences/"
PASSWORD = "x-Secret-123"


def staff(username: str) -> User:
    return User.objects.create_user(username, password=PASSWORD, is_staff=True)


def signed_in(user: User, *, enforce_csrf_checks: bool = False) -> Client:
    client = Client(enforce_csrf_checks=enforce_csrf_checks)
    client.force_login(user)
    return client


def body_mode(html: str) -> str:
    found = re.search(r'<body[^>]*data-time-display="([a-z]+)"', html)
    assert found is not None, "no data-time-display on <body>"
    return found.group(1)


def test_url_name() -> None:
    assert reverse("tasks_app:preferences") == URL


def test_every_page_carries_the_default_then_the_users_choice() -> None:
    alice = staff("alice")
    client = signed_in(alice)
    page = client.get(reverse("tasks_app:runs")).content.decode()
    assert body_mode(page) == "relative"
    assert 'name="time_display" value="relative" aria-pressed="true"' in page
    assert 'name="time_display" value="utc" aria-pressed="false"' in page
    assert 'id="shortcuts-help"' in page

    response = client.post(URL, {"time_display": "utc", "next": "/runs/"})

    assert response.status_code == 302
    assert response["Location"] == "/runs/"
    assert UserPreference.objects.get(user=alice).time_display == TimeDisplay.UTC
    for name in ("tasks_app:overview", "tasks_app:runs", "tasks_app:audit", "tasks_app:jobs"):
        page = client.get(reverse(name)).content.decode()
        assert body_mode(page) == "utc", name
        assert 'name="time_display" value="utc" aria-pressed="true"' in page


def test_the_choice_is_per_user() -> None:
    alice, bob = staff("alice"), staff("bob")
    signed_in(alice).post(URL, {"time_display": "local"})

    assert body_mode(signed_in(bob).get("/").content.decode()) == "relative"
    assert body_mode(signed_in(alice).get("/").content.decode()) == "local"
    assert preference_services.time_display_of(bob) == "relative"


def test_script_gets_json() -> None:
    client = signed_in(staff("alice"))

    response = client.post(URL, {"time_display": "local"}, headers={"Accept": "application/json"})

    assert response.status_code == 200
    assert response.json() == {"time_display": "local"}


@pytest.mark.parametrize("value", ["", "UTC-ish", "<b>x</b>", "relative" * 10])
def test_invalid_value_is_a_400_naming_the_field(value: str) -> None:
    alice = staff("alice")
    client = signed_in(alice)

    page = client.post(URL, {"time_display": value})
    answer = client.post(URL, {"time_display": value}, headers={"Accept": "application/json"})

    assert page.status_code == 400
    html = page.content.decode()
    assert 'id="id_time_display_error"' in html
    assert "<b>x</b>" not in html
    assert answer.status_code == 400
    assert list(answer.json()["errors"]) == ["time_display"]
    assert not UserPreference.objects.filter(user=alice).exists()


def test_missing_value_is_a_400() -> None:
    response = signed_in(staff("alice")).post(URL, {}, headers={"Accept": "application/json"})

    assert response.status_code == 400
    assert "time_display" in response.json()["errors"]


def test_next_must_stay_on_the_site() -> None:
    client = signed_in(staff("alice"))

    response = client.post(URL, {"time_display": "utc", "next": "https://evil.example/"})

    assert response.status_code == 302
    assert response["Location"] == URL


def test_preferences_page_shows_the_current_choice() -> None:
    alice = staff("alice")
    UserPreference.objects.create(user=alice, time_display=TimeDisplay.LOCAL)

    html = signed_in(alice).get(URL).content.decode()

    assert re.search(r'<input[^>]*value="local"[^>]*checked', html)


def test_post_needs_the_csrf_token() -> None:
    alice = staff("alice")
    client = signed_in(alice, enforce_csrf_checks=True)

    refused = client.post(URL, {"time_display": "utc"})
    page = client.get("/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None
    accepted = client.post(
        URL,
        {"time_display": "utc"},
        headers={"Accept": "application/json", "X-CSRFToken": token.group(1)},
    )

    assert refused.status_code == 403
    assert accepted.status_code == 200
    assert UserPreference.objects.get(user=alice).time_display == "utc"


def test_staff_only() -> None:
    anonymous = Client().post(URL, {"time_display": "utc"})
    clerk = User.objects.create_user("clerk", password=PASSWORD)
    refused = signed_in(clerk).post(URL, {"time_display": "utc"})

    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]
    assert refused.status_code == 403
    assert not UserPreference.objects.exists()
    with pytest.raises(PermissionDenied):
        preference_services.preference_set_time_display(actor=Actor(user=clerk), value="utc")
    with pytest.raises(PermissionDenied):
        preference_services.preference_set_time_display(actor=Actor(system="test"), value="utc")


def test_a_change_is_audited_once() -> None:
    alice = staff("alice")
    client = signed_in(alice)

    client.post(URL, {"time_display": "utc"})
    client.post(URL, {"time_display": "utc"})
    client.post(URL, {"time_display": "relative"})

    entries = AuditEntry.objects.filter(action="preference.time_display").order_by("pk")
    assert [e.details for e in entries] == [
        {"time_display": "utc", "previous": "relative"},
        {"time_display": "relative", "previous": "utc"},
    ]
    assert {(e.actor_label, e.target_type, e.target_id) for e in entries} == {
        ("alice", "user", str(alice.pk))
    }
