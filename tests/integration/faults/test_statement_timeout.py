"""Web requests run their SQL under TASKDECK_WEB_STATEMENT_TIMEOUT_MS (PostgreSQL): a statement
that waits past it is cancelled and the request answers 503 saying the query took too long (a
page, a short htmx fragment, or the API's JSON) instead of holding the web worker; the setting
is reset after the request, so code outside web requests keeps the server's default.

The slow statement is real: the runs history's own query, waiting for a lock another session
holds on the run table (as behind a long migration or a stuck transaction)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, override_settings
from django.urls import reverse

from tasks_app.middleware import TIMEOUT_DETAIL
from tasks_app.models import Run
from tasks_app.tokens import issue_token

# Without the timeout a request would wait for the lock until the test's end: fail sooner.
pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(60),
]

TIMEOUT_MS = 300


def server_default() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reset_val FROM pg_settings WHERE name = 'statement_timeout'")
        return str(cursor.fetchone()[0])


def current_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT setting FROM pg_settings WHERE name = 'statement_timeout'")
        return str(cursor.fetchone()[0])


@pytest.fixture
def run_table_locked() -> Iterator[None]:
    """Another session holds an exclusive lock on the run table until the test ends."""
    db = connection.settings_dict
    other = psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
    )
    try:
        other.execute(f"LOCK TABLE {Run._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        yield
    finally:
        other.rollback()
        other.close()


@pytest.fixture
def boss() -> User:
    return User.objects.create_superuser("boss", password="x-Secret-123")


def staff_client(user: User) -> Client:
    client = Client()  # built after override_settings: its middleware reads the timeout
    client.force_login(user)
    return client


def timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_the_default_is_five_seconds() -> None:
    assert settings.TASKDECK_WEB_STATEMENT_TIMEOUT_MS == 5000


@override_settings(TASKDECK_WEB_STATEMENT_TIMEOUT_MS=TIMEOUT_MS)
def test_a_page_whose_query_waits_too_long_answers_503_at_once(
    boss: User, run_table_locked: None
) -> None:
    client = staff_client(boss)
    response, seconds = timed(lambda: client.get(reverse("tasks_app:runs")))
    assert response.status_code == 503
    page = response.content.decode()
    assert "The query took too long" in page
    assert TIMEOUT_DETAIL in page
    assert "<nav" in page  # the site's layout: a page, not a bare error
    assert seconds < 3  # the timeout's 0.3 s, not the lock holder's pleasure


@override_settings(TASKDECK_WEB_STATEMENT_TIMEOUT_MS=TIMEOUT_MS)
def test_an_htmx_poll_gets_a_short_fragment(boss: User, run_table_locked: None) -> None:
    client = staff_client(boss)
    response = client.get(
        reverse("tasks_app:runs"), headers={"HX-Request": "true", "HX-Target": "rows"}
    )
    assert response.status_code == 503
    body = response.content.decode()
    assert TIMEOUT_DETAIL in body
    assert "<html" not in body.lower()
    assert len(body) < 400


@override_settings(TASKDECK_WEB_STATEMENT_TIMEOUT_MS=TIMEOUT_MS)
def test_the_api_answers_503_json(boss: User, run_table_locked: None) -> None:
    token = issue_token(boss, "ci")[1]
    client = Client()
    response, seconds = timed(
        lambda: client.get("/api/v1/runs", headers={"Authorization": f"Bearer {token}"})
    )
    assert response.status_code == 503
    assert response.json()["detail"] == TIMEOUT_DETAIL
    assert seconds < 3


@override_settings(TASKDECK_WEB_STATEMENT_TIMEOUT_MS=TIMEOUT_MS)
def test_the_timeout_ends_with_the_request(boss: User) -> None:
    default = server_default()
    client = staff_client(boss)
    assert client.get(reverse("tasks_app:runs")).status_code == 200
    assert current_timeout() == default  # reset on the connection the request used
    with connection.cursor() as cursor:  # outside a request: no web timeout
        cursor.execute("SELECT pg_sleep(%s)", [TIMEOUT_MS / 1000 * 2])


@override_settings(TASKDECK_WEB_STATEMENT_TIMEOUT_MS=TIMEOUT_MS)
def test_after_a_timeout_the_connection_serves_the_next_request(boss: User) -> None:
    client = staff_client(boss)
    db = connection.settings_dict
    with psycopg.connect(
        dbname=db["NAME"], user=db["USER"], password=db["PASSWORD"] or None,
        host=db["HOST"] or None, port=db["PORT"] or None,
    ) as other:  # fmt: skip
        other.execute(f"LOCK TABLE {Run._meta.db_table} IN ACCESS EXCLUSIVE MODE")
        assert client.get(reverse("tasks_app:runs")).status_code == 503
        other.rollback()
    assert client.get(reverse("tasks_app:runs")).status_code == 200
    assert current_timeout() == server_default()


@override_settings(TASKDECK_WEB_STATEMENT_TIMEOUT_MS=0)
def test_zero_turns_it_off(boss: User) -> None:
    client = staff_client(boss)
    with connection.execute_wrapper(_refuse_statement_timeout):
        assert client.get(reverse("tasks_app:runs")).status_code == 200


def _refuse_statement_timeout(execute: Any, sql: str, *args: Any) -> Any:
    assert "statement_timeout" not in sql
    return execute(sql, *args)
