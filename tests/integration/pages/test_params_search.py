"""The runs history's search in the parameters: what it finds (wildcards in the text are
literal), the text it refuses (no 3 letters or digits in a row: no trigram, no index), and, on
PostgreSQL, that the trigram index of migration 0007 serves the very query the page runs."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse

from tasks_app.models import Run, RunState
from tasks_app.selectors import RunFilter, runs_matching, runs_page
from tasks_app.selectors.runs import SEARCH_TOO_SHORT
from tasks_app.tokens import issue_token
from tests.support import ledger

pytestmark = pytest.mark.django_db


def make_run(params: dict[str, Any], minutes_ago: int = 0) -> Run:
    return ledger.make_run(RunState.SUCCESS, minutes_ago=minutes_ago, params=params)


def found(text: str) -> list[Run]:
    return runs_page(RunFilter(text=text)).runs


@pytest.fixture
def boss(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("boss", password="x-Secret-123"))
    return client


def test_finds_text_in_parameters_whatever_its_case_newest_first() -> None:
    old = make_run({"team": "Atlas-Migration"}, minutes_ago=5)
    new = make_run({"team": "atlas-migration", "full": True}, minutes_ago=1)
    make_run({"team": "payments"})
    assert found("ATLAS-migration") == [new, old]


def test_percent_and_underscore_are_literal() -> None:
    percent = make_run({"note": "50% off"})
    make_run({"note": "50 xoff"})  # what `%` as a wildcard would match
    underscore = make_run({"code": "abc_def"})
    make_run({"code": "abcXdef"})  # what `_` as a wildcard would match
    assert found("50% off") == [percent]
    assert found("abc_def") == [underscore]


@pytest.mark.parametrize("text", ["ab", "a-b", "5%", "_%_", "x y z"])
def test_the_page_refuses_text_without_three_letters_or_digits_in_a_row(
    boss: Client, text: str
) -> None:
    make_run({"team": "a-b ab 5% x y z"})
    page = boss.get(reverse("tasks_app:runs"), {"q": text})
    assert page.status_code == 200
    assert SEARCH_TOO_SHORT in page.content.decode()


@pytest.mark.parametrize("text", ["ab", "a-b", "5%"])
def test_the_api_refuses_such_text_naming_q(client: Client, text: str) -> None:
    token = issue_token(User.objects.create_superuser("boss", password="x-Secret-123"), "ci")[1]
    answer = client.get("/api/v1/runs", {"q": text}, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400
    assert answer.json()["errors"] == {"q": [SEARCH_TOO_SHORT]}


def test_the_page_and_the_api_search_three_letters(boss: Client) -> None:
    run = make_run({"team": "abc"})
    make_run({"team": "xyz"})
    page = boss.get(reverse("tasks_app:runs"), {"q": "abc"}).content.decode()
    assert SEARCH_TOO_SHORT not in page
    assert run.task_id in page


@pytest.mark.postgresql
def test_the_trigram_index_serves_the_pages_query() -> None:
    """With sequential and ordered index scans ruled out, the planner can still answer the
    ORM's query (`UPPER(params::text) LIKE UPPER('%…%')`, ordered, a page) from the trigram
    index only if its expression is exactly the index's."""
    for n in range(200):
        make_run({"team": f"team-{n}", "batch": n})
    target = make_run({"team": "zebra-crossing"})
    query = runs_matching(RunFilter(text="Zebra-Cross")).order_by("-queued_at", "-id")[:51]
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Bitmap Index Scan on run_params_trgm_idx" in plan, plan
    assert list(query) == [target]
