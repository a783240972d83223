"""GET/PUT /api/v1/me/preferences: the token's user reads and changes their own time display,
the same stored choice the dashboard's toggle sets; a bad value is a 400 naming the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tasks_app.models import AuditEntry, UserPreference
from tasks_app.tokens import issue_token

pytestmark = pytest.mark.django_db

URL = "/api/v1/me/preferences"


def bearer(user: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(user, 'prefs')[1]}"}


def put(client: Client, headers: dict[str, str], body: object) -> Any:
    return client.put(URL, json.dumps(body), content_type="application/json", headers=headers)


def test_read_then_change_my_preferences(client: Client) -> None:
    alice = User.objects.create_user("alice", password="x-Secret-123", is_staff=True)
    bob = User.objects.create_user("bob", password="x-Secret-123", is_staff=True)
    headers = bearer(alice)

    before = client.get(URL, headers=headers)
    changed = put(client, headers, {"time_display": "local"})
    after = client.get(URL, headers=headers)

    assert before.status_code == 200
    assert before.json() == {"time_display": "relative"}
    assert changed.status_code == 200
    assert changed.json() == {"time_display": "local"}
    assert after.json() == {"time_display": "local"}
    assert client.get(URL, headers=bearer(bob)).json() == {"time_display": "relative"}
    entry = AuditEntry.objects.get(action="preference.time_display")
    assert entry.actor_label == "alice (token prefs)"


@pytest.mark.parametrize(
    "body", [{"time_display": "mars"}, {"time_display": ""}, {"time_display": 3}, {}]
)
def test_bad_values_are_400_naming_the_field(client: Client, body: dict[str, object]) -> None:
    alice = User.objects.create_user("alice", password="x-Secret-123", is_staff=True)

    response = put(client, bearer(alice), body)

    assert response.status_code == 400, response.content
    assert "time_display" in response.json()["errors"]
    assert not UserPreference.objects.exists()


def test_needs_a_token(client: Client) -> None:
    alice = User.objects.create_user("alice", password="x-Secret-123", is_staff=True)
    client.force_login(alice)  # a session never acts through the API

    assert client.get(URL).status_code == 401
    assert put(client, {}, {"time_display": "utc"}).status_code == 401
