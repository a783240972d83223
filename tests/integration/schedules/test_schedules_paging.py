"""The schedules list and `GET /api/v1/schedules` page by name with a keyset cursor, as runs do:
every schedule exactly once, in order, a page at a time, whatever the number of schedules."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tasks_app.selectors.schedules import SCHEDULE_PAGE_SIZE
from tasks_app.tokens import issue_token

pytestmark = pytest.mark.django_db

API = "/api/v1/schedules"
NEXT_LINK = re.compile(r'<a href="\?cursor=([^"]+)" rel="next">')
ROW_NAME = re.compile(r'<a href="/schedules/\d+/">([^<]+)</a>')


def add_schedules(count: int, prefix: str = "paged") -> list[str]:
    """`count` schedules (plain interval ones, written in one statement), and every schedule's
    name in the order the list shows them."""
    every, _ = IntervalSchedule.objects.get_or_create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.bulk_create(
        PeriodicTask(name=f"{prefix} {n:03d}", task="taskdeck.ping", interval=every)
        for n in range(count)
    )
    return list(PeriodicTask.objects.order_by("name").values_list("name", flat=True))


@pytest.fixture
def boss(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("boss", password="x-Secret-123"))
    return client


def test_the_list_pages_every_schedule_once_in_name_order(boss: Client) -> None:
    names = add_schedules(2 * SCHEDULE_PAGE_SIZE + 7)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        html = boss.get(reverse("tasks_app:schedules"), {"cursor": cursor} if cursor else {})
        assert html.status_code == 200
        body = html.content.decode()
        rows = ROW_NAME.findall(body)
        assert 0 < len(rows) <= SCHEDULE_PAGE_SIZE
        seen += rows
        pages += 1
        assert ("First</a>" in body) == (cursor is not None)
        found = NEXT_LINK.search(body)
        if found is None:
            break
        cursor = found.group(1)
    assert seen == names
    assert pages == 3


def test_a_page_costs_the_same_queries_however_many_schedules(boss: Client) -> None:
    add_schedules(10)
    with CaptureQueriesContext(connection) as few:
        boss.get(reverse("tasks_app:schedules"))
    add_schedules(150, prefix="more")
    with CaptureQueriesContext(connection) as many:
        response = boss.get(reverse("tasks_app:schedules"))
    assert len(ROW_NAME.findall(response.content.decode())) == SCHEDULE_PAGE_SIZE
    assert len(many.captured_queries) == len(few.captured_queries)
    listed = [q["sql"] for q in many.captured_queries if "periodictask" in q["sql"]]
    assert any(f"LIMIT {SCHEDULE_PAGE_SIZE + 1}" in sql for sql in listed)


def test_a_cursor_that_is_not_ours_shows_the_first_page(boss: Client) -> None:
    names = add_schedules(3)
    for junk in ["%%%", "AAAA", "////", "x" * 500]:
        response = boss.get(reverse("tasks_app:schedules"), {"cursor": junk})
        assert response.status_code == 200
        assert ROW_NAME.findall(response.content.decode()) == names[:SCHEDULE_PAGE_SIZE]


def test_the_toggle_goes_back_to_the_page_it_was_on(boss: Client) -> None:
    add_schedules(SCHEDULE_PAGE_SIZE + 5)
    first = boss.get(reverse("tasks_app:schedules")).content.decode()
    cursor = NEXT_LINK.search(first)
    assert cursor is not None
    page = f"{reverse('tasks_app:schedules')}?cursor={cursor.group(1)}"
    assert f'name="next" value="{page}"' in boss.get(page).content.decode()


def api_get(client: Client, token: str, **params: Any) -> Any:
    return client.get(API, params, headers={"Authorization": f"Bearer {token}"})


def test_the_api_pages_like_runs(client: Client) -> None:
    names = add_schedules(25)
    token = issue_token(User.objects.create_superuser("boss", password="x-Secret-123"), "ci")[1]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        answer = api_get(client, token, limit=10, **({"cursor": cursor} if cursor else {}))
        assert answer.status_code == 200
        body = answer.json()
        assert set(body) == {"items", "next_cursor"}  # the envelope of GET /runs
        assert len(body["items"]) <= 10
        seen += [item["name"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == names
    default = api_get(client, token).json()
    assert [i["name"] for i in default["items"]] == names[:SCHEDULE_PAGE_SIZE]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 201}, "limit"), ({"cursor": "%%%"}, "cursor")],
)
def test_the_api_refuses_a_bad_limit_or_cursor_naming_it(
    client: Client, params: dict[str, Any], field: str
) -> None:
    token = issue_token(User.objects.create_superuser("boss", password="x-Secret-123"), "ci")[1]
    answer = api_get(client, token, **params)
    assert answer.status_code == 400
    assert field in answer.json()["errors"]


def test_the_openapi_document_describes_the_page(client: Client) -> None:
    client.force_login(User.objects.create_superuser("boss", password="x-Secret-123"))
    document = client.get("/api/v1/openapi.json").json()
    operation = document["paths"]["/api/v1/schedules"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"cursor", "limit"}
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    page = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    assert set(page["properties"]) == {"items", "next_cursor"}
    assert page["properties"]["items"]["items"]["$ref"].endswith("/ScheduleOut")
