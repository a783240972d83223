"""Login throttling (django-axes, settings AXES_*): after 5 failed logins for one username from
one address, or 20 from one address over any usernames, further attempts from there are refused
for the cool-off (15 minutes) with a page that says so (429, not a 500), even with the right
password. Never by username alone: strangers failing from elsewhere cannot lock the real user
out. A successful login clears its count; the admin's login is covered the same way. API tokens
are 256-bit secrets, so guessing one is hopeless without any throttle.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tasks_app.tokens import issue_token

pytestmark = pytest.mark.django_db

PASSWORD = "x-Secret-123"
LIMIT = settings.AXES_FAILURE_LIMIT
ADDRESS_LIMIT = settings.TASKDECK_LOGIN_ADDRESS_FAILURE_LIMIT


@pytest.fixture
def alice() -> User:
    return User.objects.create_user("alice", password=PASSWORD, is_staff=True)


@dataclass(frozen=True)
class Attempt:
    status_code: int
    html: str
    logged_in: bool


def attempt(
    username: str, password: str, *, url: str = "/login/", ip: str = "10.0.0.1", **meta: Any
) -> Attempt:
    """One login from a fresh browser at `ip` (`meta`: more request headers, WSGI style)."""
    client = Client(REMOTE_ADDR=ip, **meta)
    response = client.post(url, {"username": username, "password": password, "next": "/"})
    return Attempt(
        response.status_code, response.content.decode(), "_auth_user_id" in client.session
    )


def fail(times: int, username: str = "alice", **kwargs: Any) -> None:
    for _ in range(times):
        response = attempt(username, "wrong-password", **kwargs)
        assert response.status_code in {200, 429}


def assert_locked_out(response: Attempt) -> None:
    assert response.status_code == 429
    assert not response.logged_in
    assert "Too many failed logins" in response.html
    assert "logging in from it is paused for 15 minutes" in response.html


def test_the_defaults() -> None:
    assert settings.AXES_FAILURE_LIMIT == 5
    assert timedelta(hours=settings.AXES_COOLOFF_TIME) == timedelta(minutes=15)
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]
    assert ADDRESS_LIMIT == 20
    assert settings.AXES_RESET_ON_SUCCESS is True


def test_below_the_limit_the_right_password_still_works(alice: User) -> None:
    fail(LIMIT - 1)

    response = attempt("alice", PASSWORD)

    assert response.status_code == 302
    assert response.logged_in


def test_failures_for_a_username_from_many_addresses_do_not_lock_it_out(alice: User) -> None:
    """Strangers failing for `alice` from five addresses (the limit, many times over in all)
    cannot lock the real alice out from hers."""
    for i in range(LIMIT):
        fail(LIMIT - 1, ip=f"10.0.1.{i}")

    response = attempt("alice", PASSWORD, ip="10.0.2.1")

    assert response.status_code == 302
    assert response.logged_in


def test_the_limit_for_a_username_from_one_address_locks_that_pair(alice: User) -> None:
    for _ in range(LIMIT - 1):
        fail(1, ip="10.0.1.1")
    last = attempt("alice", "wrong-password", ip="10.0.1.1")

    assert_locked_out(last)  # the attempt that reaches the limit gets the page already
    assert_locked_out(attempt("alice", PASSWORD, ip="10.0.1.1"))
    # The same username from another address, and another username from this one, still work.
    assert attempt("alice", PASSWORD, ip="10.0.2.1").logged_in
    User.objects.create_user("bob", password=PASSWORD, is_staff=True)
    assert attempt("bob", PASSWORD, ip="10.0.1.1").logged_in


def test_the_address_limit_locks_every_username_from_it(alice: User) -> None:
    """One address guessing many usernames, never reaching the pair limit for any, is locked
    at its own (higher) limit; other addresses are not."""
    for i in range(ADDRESS_LIMIT - 1):
        fail(1, username=f"u{i}", ip="10.9.9.9")
    assert attempt("alice", PASSWORD, ip="10.9.9.9").logged_in  # one short of the limit

    fail(1, username="one-more", ip="10.9.9.9")
    # alice's own success cleared only her pair, not the address's guesses at others.
    assert_locked_out(attempt("alice", PASSWORD, ip="10.9.9.9"))
    assert_locked_out(attempt("new-name", "wrong-password", ip="10.9.9.9"))
    assert attempt("alice", PASSWORD, ip="10.9.9.10").logged_in


def test_the_lockout_ends_after_the_cool_off_and_refusals_do_not_extend_it(alice: User) -> None:
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        fail(LIMIT)
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        assert_locked_out(attempt("alice", PASSWORD))  # refused: does not restart the clock
    with time_machine.travel(start + timedelta(minutes=16), tick=False):
        assert attempt("alice", PASSWORD).logged_in


def test_a_successful_login_clears_the_count(alice: User) -> None:
    fail(LIMIT - 1)
    assert attempt("alice", PASSWORD).logged_in

    fail(LIMIT - 1)

    assert attempt("alice", PASSWORD).logged_in


def test_the_admin_login_is_covered_and_shares_the_count(alice: User) -> None:
    fail(LIMIT - 2, url="/admin/login/")
    fail(1, url="/login/")
    last = attempt("alice", "wrong-password", url="/admin/login/")

    assert_locked_out(last)
    assert_locked_out(attempt("alice", PASSWORD, url="/admin/login/"))
    assert_locked_out(attempt("alice", PASSWORD, url="/login/"))


def test_a_forged_forwarded_for_header_does_not_escape_the_address_limit(alice: User) -> None:
    """Without a trusted proxy (TASKDECK_TRUSTED_PROXIES=0) the client's X-Forwarded-For is
    ignored: changing it on every attempt does not start a fresh count."""
    for i in range(LIMIT):
        fail(1, HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")

    assert_locked_out(attempt("alice", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200"))


def test_behind_a_trusted_proxy_the_client_address_comes_from_it(
    alice: User, settings: Any
) -> None:
    """One proxy in front: the client is the last X-Forwarded-For entry (what the proxy saw);
    whatever the client wrote before it is not trusted."""
    settings.TASKDECK_TRUSTED_PROXIES = 1
    proxy = "10.0.0.254"
    for i in range(LIMIT):
        forged = f"192.0.2.{i}, 198.51.100.7"  # a forged first entry, then the real client
        fail(1, ip=proxy, HTTP_X_FORWARDED_FOR=forged)

    assert_locked_out(attempt("alice", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.7"))
    # Another client behind the same proxy is not locked out with it.
    assert attempt("alice", PASSWORD, ip=proxy, HTTP_X_FORWARDED_FOR="198.51.100.8").logged_in


def test_code_may_still_authenticate_without_a_request(alice: User) -> None:
    """Management commands and scripts call authenticate() without a request: not throttled,
    and not refused for it either."""
    assert authenticate(username="alice", password=PASSWORD) == alice
    assert authenticate(username="alice", password="wrong") is None


def test_api_tokens_are_256_bit_secrets(alice: User) -> None:
    """Nothing throttles the API, and nothing needs to: a token is 32 random bytes, so guessing
    one at a million tries a second takes longer than the universe has existed, many times
    over. Unknown tokens cost one indexed lookup of a SHA-256 digest."""
    raw = issue_token(alice, "t")[1]
    secret = raw.split("_", 2)[2]  # tdk_<prefix>_<secret>; the secret may hold "_" too

    assert len(base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))) * 8 == 256
    response = Client().get("/api/v1/jobs", headers={"Authorization": "Bearer tdk_00_guess"})
    assert response.status_code == 401
