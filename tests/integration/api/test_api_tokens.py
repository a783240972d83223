"""Personal API tokens: stored only as a digest, checked by `tokens.authenticate` (revoked tokens
and inactive users refused, last use recorded at most once a minute), managed on the "API
tokens" page (shown once, revoked by POST, audited), and issued by `manage.py create_api_token`."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core import serializers
from django.core.exceptions import PermissionDenied
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from tasks_app import tokens
from tasks_app.models import ApiToken, AuditEntry
from tasks_app.services.common import Actor, ServiceError
from tasks_app.services.tokens import (
    MAX_ACTIVE_TOKENS,
    InvalidTokenName,
    TooManyTokens,
    token_actor,
    token_create,
    token_revoke,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", password="x-Secret-123", is_staff=True)


@pytest.fixture
def bob() -> User:
    return User.objects.create_user("bob", password="x-Secret-123", is_staff=True)


@pytest.fixture
def alice_client(client: Client, alice: User) -> Client:
    client.force_login(alice)
    return client


def stored_text() -> str:
    """Every token row and audit entry, serialized: where a leaked token would show up."""
    rows = [*ApiToken.objects.all(), *AuditEntry.objects.all()]
    return str(serializers.serialize("json", rows))


# --- issuing and checking ----------------------------------------------------------------


def test_a_token_is_stored_only_as_its_digest(alice: User) -> None:
    token, raw = token_create(actor=Actor(user=alice), name="ci")

    secret = raw.split("_", 2)[2]
    assert raw.startswith(token.prefix + "_")
    assert token.prefix.startswith("tdk_")
    assert len(secret) >= 43  # 32 random bytes, URL-safe base64
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    stored = stored_text()
    assert raw not in stored
    assert secret not in stored
    entry = AuditEntry.objects.get(action="token.create")
    assert token.digest not in str(entry.details)
    assert entry.details == {
        "name": "ci", "prefix": token.prefix, "user": "alice", "expires_at": None,
    }  # fmt: skip
    assert (entry.target_type, entry.target_id) == ("token", str(token.pk))
    assert (entry.actor_user_id, entry.actor_label) == (alice.pk, "alice")


def test_authenticate_accepts_the_token_and_refuses_anything_else(alice: User) -> None:
    token, raw = token_create(actor=Actor(user=alice), name="ci")

    found = tokens.authenticate(raw)

    assert found is not None
    assert found.pk == token.pk
    assert found.user == alice
    assert tokens.authenticate(raw[:-1] + ("A" if raw[-1] != "A" else "B")) is None
    assert tokens.authenticate(raw + "x") is None
    assert tokens.authenticate(token.prefix) is None
    assert tokens.authenticate("") is None
    assert tokens.authenticate("tdk_" + "x" * 10_000) is None


def test_a_revoked_token_is_refused(alice: User) -> None:
    token, raw = token_create(actor=Actor(user=alice), name="ci")

    assert token_revoke(token, actor=Actor(user=alice)) is True

    assert tokens.authenticate(raw) is None
    assert not ApiToken.objects.get(pk=token.pk).is_active


@pytest.mark.parametrize("change", [{"is_active": False}, {"is_staff": False}])
def test_the_token_of_a_user_who_may_no_longer_sign_in_is_refused(
    alice: User, change: dict[str, bool]
) -> None:
    _token, raw = token_create(actor=Actor(user=alice), name="ci")
    User.objects.filter(pk=alice.pk).update(**change)

    assert tokens.authenticate(raw) is None


def test_last_use_is_recorded_at_most_once_a_minute(
    alice: User, django_assert_num_queries: DjangoAssertNumQueries
) -> None:
    token, raw = token_create(actor=Actor(user=alice), name="ci")
    assert token.last_used_at is None

    tokens.authenticate(raw)
    first = ApiToken.objects.get(pk=token.pk).last_used_at
    with django_assert_num_queries(1):  # the lookup only: no write
        tokens.authenticate(raw)
    second = ApiToken.objects.get(pk=token.pk).last_used_at
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now() - timedelta(seconds=61))
    tokens.authenticate(raw)
    third = ApiToken.objects.get(pk=token.pk).last_used_at

    assert first is not None
    assert second == first
    assert third is not None
    assert third > timezone.now() - timedelta(seconds=5)


def test_a_token_acts_with_its_users_permissions_and_is_audited_as_its_owner(
    alice: User,
) -> None:
    _token, raw = token_create(actor=Actor(user=alice), name="ci")
    found = tokens.authenticate(raw)
    assert found is not None

    actor = token_actor(found)

    assert actor.label == "alice (token ci)"
    assert actor.user_id == alice.pk
    assert not actor.has_perm("tasks_app.launch_job")
    # A token cannot mint tokens that would outlive its own revocation.
    with pytest.raises(PermissionDenied):
        token_create(actor=actor, name="another")


def test_actor_labels() -> None:
    alice = User(username="alice", pk=7)

    assert Actor(user=alice, token_name="ci").label == "alice (token ci)"
    assert Actor(user=alice, token_name="ci").user_id == 7
    assert Actor(user=alice).label == "alice"
    assert Actor(token_name="ci").label == "token:ci"
    assert Actor(system="manage.py").label == "manage.py"


def test_names_are_required_and_bounded_and_so_is_the_number_of_tokens(alice: User) -> None:
    actor = Actor(user=alice)

    with pytest.raises(InvalidTokenName):
        token_create(actor=actor, name="   ")
    with pytest.raises(InvalidTokenName):
        token_create(actor=actor, name="x" * 101)
    made = [token_create(actor=actor, name=f"t{i}")[0] for i in range(MAX_ACTIVE_TOKENS)]
    with pytest.raises(TooManyTokens):
        token_create(actor=actor, name="one too many")
    token_revoke(made[0], actor=actor)
    token_create(actor=actor, name="fits again")

    assert ApiToken.objects.filter(user=alice, revoked_at__isnull=True).count() == 20


def test_only_the_owner_or_a_superuser_revokes_a_token(alice: User, bob: User) -> None:
    token, _raw = token_create(actor=Actor(user=alice), name="ci")
    boss = User.objects.create_superuser("boss", password="x-Secret-123")

    with pytest.raises(PermissionDenied):
        token_revoke(token, actor=Actor(user=bob))
    assert token_revoke(token, actor=Actor(user=boss)) is True
    assert token_revoke(token, actor=Actor(user=boss)) is False  # already revoked: no-op

    entries = AuditEntry.objects.filter(action="token.revoke")
    assert [(e.actor_label, e.details["user"]) for e in entries] == [("boss", "alice")]


# --- the page ------------------------------------------------------------------------------


def test_the_page_shows_a_new_token_once(alice_client: Client) -> None:
    url = reverse("tasks_app:tokens")

    created = alice_client.post(url, {"name": "deploy bot"})
    again = alice_client.get(url)

    token = ApiToken.objects.get()
    raw = created.context["raw_token"]
    assert created.status_code == 201
    assert "no-store" in created["Cache-Control"]
    assert "no-store" in again["Cache-Control"]
    html = created.content.decode()
    assert raw in html
    assert "it will not be shown again" in html
    assert tokens.authenticate(raw) == token
    assert again.status_code == 200
    page = again.content.decode()
    assert raw not in page
    assert "deploy bot" in page
    assert f"{token.prefix}…" in page
    assert raw not in stored_text()
    assert raw not in str(dict(alice_client.session))


def test_the_page_refuses_a_bad_name_inline(alice_client: Client) -> None:
    response = alice_client.post(reverse("tasks_app:tokens"), {"name": ""})

    assert response.status_code == 400
    assert b"This field is required." in response.content
    assert not ApiToken.objects.exists()


def test_the_page_lists_only_the_users_own_tokens(alice_client: Client, bob: User) -> None:
    token_create(actor=Actor(user=bob), name="bobs secret script")

    page = alice_client.get(reverse("tasks_app:tokens")).content.decode()

    assert "bobs secret script" not in page
    assert "No tokens yet." in page
    assert ">API tokens</a>" in page


def test_revoke_by_post_works_and_is_audited(alice_client: Client, alice: User) -> None:
    token, raw = token_create(actor=Actor(user=alice), name="ci")
    url = reverse("tasks_app:token_revoke", args=[token.pk])

    refused_get = alice_client.get(url)
    response = alice_client.post(url)

    assert refused_get.status_code == 405
    assert response.status_code == 302
    assert response["Location"] == reverse("tasks_app:tokens")
    assert tokens.authenticate(raw) is None
    entry = AuditEntry.objects.get(action="token.revoke")
    assert (entry.actor_label, entry.target_type, entry.target_id) == (
        "alice", "token", str(token.pk),
    )  # fmt: skip
    page = alice_client.get(response["Location"]).content.decode()
    assert "Revoked token ci" in page
    assert "revoked <time" in page


def test_another_users_token_cannot_be_revoked(alice_client: Client, bob: User) -> None:
    token, raw = token_create(actor=Actor(user=bob), name="bobs")

    response = alice_client.post(reverse("tasks_app:token_revoke", args=[token.pk]))
    missing = alice_client.post(reverse("tasks_app:token_revoke", args=[token.pk + 100]))

    assert response.status_code == 403
    assert missing.status_code == 404
    assert tokens.authenticate(raw) is not None
    assert not AuditEntry.objects.filter(action="token.revoke").exists()


def test_non_staff_cannot_reach_the_page(client: Client) -> None:
    client.force_login(User.objects.create_user("visitor", password="x-Secret-123"))

    assert client.get(reverse("tasks_app:tokens")).status_code == 403
    assert client.post(reverse("tasks_app:tokens"), {"name": "x"}).status_code == 403
    assert not ApiToken.objects.exists()


# --- manage.py create_api_token ----------------------------------------------------------


def test_the_command_prints_only_a_working_token(alice: User) -> None:
    out = StringIO()

    call_command("create_api_token", "alice", "--name", "ci", stdout=out)

    raw = out.getvalue().strip()
    assert "\n" not in raw
    token = tokens.authenticate(raw)
    assert token is not None
    assert (token.user, token.name) == (alice, "ci")
    entry = AuditEntry.objects.get(action="token.create")
    assert (entry.actor_label, entry.actor_user_id) == ("manage.py", None)
    assert entry.details["user"] == "alice"
    assert raw not in stored_text()


@pytest.mark.parametrize(
    ("user", "message"),
    [
        (None, "No user named 'ghost'."),
        ("inactive", "inactive"),
        ("not staff", "not an active staff user"),
    ],
)
def test_the_command_fails_clearly_for_a_user_it_cannot_serve(
    user: str | None, message: str
) -> None:
    if user is not None:
        User.objects.create_user(
            "ghost",
            password="x-Secret-123",
            is_active=user != "inactive",
            is_staff=user != "not staff",
        )

    with pytest.raises(CommandError, match=message):
        call_command("create_api_token", "ghost", stdout=StringIO())

    assert not ApiToken.objects.exists()


def test_only_system_actors_issue_tokens_for_someone_else(alice: User, bob: User) -> None:
    with pytest.raises(PermissionDenied):
        token_create(actor=Actor(user=bob), name="for alice", user=alice)
    with pytest.raises(ServiceError):
        token_create(actor=Actor(system="manage.py"), name="x", user=User(username="n"))
