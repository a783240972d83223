"""Actions are POST only, with CSRF; reading never changes anything.

- Every page URL of the URL conf is classified: an action (POST only: GET is 405), a form or
  confirmation page (GET shows it, POST acts), or a read. A URL added later without being
  classified fails `test_every_page_url_is_classified`.
- Whatever the URL (the admin's included), a POST from a signed-in session without the CSRF
  token is refused (403, Django's CSRF failure) and changes nothing.
- The JSON API is not session-authenticated at all: its writes take a bearer token and no CSRF
  token (a cookie never acts through it: 401 without a token), and a method an operation does
  not document is 405. Its operations are enumerated from its OpenAPI document.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db.models import Model
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from tasks_app import services
from tasks_app.api.app import api
from tasks_app.models import (
    AlertChannel,
    AlertChannelKind,
    AlertDelivery,
    AlertRule,
    AlertRuleKind,
    ApiToken,
    AuditEntry,
    BulkOperation,
    QueuePause,
    Run,
    RunState,
)
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing
from tasks_app.services import Actor
from tasks_app.tokens import issue_token
from tests.integration.security.test_access import API, URLS
from tests.support.shared_rows import module_rows, refetch, session_of, signed_in

pytestmark = pytest.mark.django_db

# The dashboard's URL names, by what a GET may do there.
ACTIONS = {  # POST only
    "runs_bulk", "run_retry", "run_cancel", "schedules_bulk", "schedule_toggle",
    "schedule_run", "schedule_reset", "token_revoke", "alert_channel_rotate_secret",
    "alert_channel_test",
    "queue_pause", "queue_resume",
    "bulk_operation_resume",
}  # fmt: skip
FORMS = {  # GET shows the form or asks to confirm; POST acts
    "launch", "runs_retry_failed", "schedule_new", "schedule_edit", "schedule_delete", "tokens",
    "alert_rule_new", "alert_rule_edit", "alert_rule_delete", "alert_channel_new",
    "alert_channel_edit", "alert_channel_delete",
    "run_rerun",
    "preferences",
    "bulk_operation_new",
}  # fmt: skip
READS = {
    "overview", "jobs", "runs", "run", "run_artifact", "schedules", "schedule",
    "schedule_preview", "schedule_params", "workers", "workers_panel", "audit", "alerts",
    "schedules_calendar",
    "bulk_operation", "bulk_operation_offer",
}  # fmt: skip
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


def dashboard_url_names() -> set[str]:
    resolver = get_resolver()
    names: set[str] = set()
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver) and pattern.namespace == "tasks_app":
            names |= {p.name for p in pattern.url_patterns if isinstance(p, URLPattern) and p.name}
    return names


def test_every_page_url_is_classified() -> None:
    names = dashboard_url_names()

    assert names == ACTIONS | FORMS | READS, names ^ (ACTIONS | FORMS | READS)
    assert not ACTIONS & FORMS
    assert not ACTIONS & READS
    assert not FORMS & READS


@pytest.fixture(scope="module")
def shared_world(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """What the requests act on, and the superuser's session: made once for the module's
    hundreds of requests (tests.support.shared_rows)."""
    with module_rows(django_db_blocker):
        boss = User.objects.create_superuser("boss", password="x-Secret-123")
        now = timezone.now()
        failed = Run.objects.create(
            task_id="csrf-failed", job_name="demo.flaky", state=RunState.FAILURE,
            queued_at=now, finished_at=now, params={"failure_rate": 1.0},
        )  # fmt: skip
        queued = Run.objects.create(
            task_id="csrf-queued", job_name="demo.progress", state=RunState.PENDING,
            queued_at=now, params={"steps": 1},
        )  # fmt: skip
        schedule = services.schedule_save(
            ScheduleDefinition(
                name="csrf schedule", job="demo.progress",
                timing=Timing(Kind.CRONTAB, cron="30 2 * * 1-5", timezone="UTC"),
                params={"steps": 1},
            ),
            actor=Actor(user=boss),
        )  # fmt: skip
        token, raw = issue_token(boss, "csrf")
        channel = AlertChannel.objects.create(
            name="csrf channel", kind=AlertChannelKind.EMAIL, email_to="ops@example.com"
        )
        rule = AlertRule.objects.create(name="csrf rule", kind=AlertRuleKind.RUN_FAILED)
        yield {
            "boss": boss, "failed": failed, "queued": queued, "schedule": schedule,
            "token": token, "raw_token": raw, "channel": channel, "rule": rule,
            "session": session_of(boss),
        }  # fmt: skip


@pytest.fixture
def world(db: None, shared_world: dict[str, Any]) -> dict[str, Any]:
    """The shared world's rows, read afresh for this test."""
    return {k: refetch(v) if isinstance(v, Model) else v for k, v in shared_world.items()}


def url_of(name: str, world: dict[str, Any]) -> str:
    """The URL of a named page, on real objects."""
    args: dict[str, list[Any]] = {
        "launch": ["demo.progress"],
        "run": [world["failed"].task_id],
        "run_retry": [world["failed"].task_id],
        "run_rerun": [world["failed"].task_id],
        "run_cancel": [world["queued"].task_id],
        "run_artifact": [world["failed"].task_id],
        "token_revoke": [world["token"].pk],
        "queue_pause": ["low"],
        "queue_resume": ["low"],
        "bulk_operation": [_bulk_operation(world)],
        "bulk_operation_resume": [_bulk_operation(world)],
    }
    for schedule_page in ("schedule", "schedule_edit", "schedule_toggle", "schedule_run",
                          "schedule_delete", "schedule_reset"):  # fmt: skip
        args[schedule_page] = [world["schedule"].pk]
    for rule_page in ("alert_rule_edit", "alert_rule_delete"):
        args[rule_page] = [world["rule"].pk]
    for channel_page in ("alert_channel_edit", "alert_channel_delete",
                         "alert_channel_rotate_secret", "alert_channel_test"):  # fmt: skip
        args[channel_page] = [world["channel"].pk]
    return reverse(f"tasks_app:{name}", args=args.get(name, []))


def _bulk_operation(world: dict[str, Any]) -> int:
    """A bulk operation of the boss's (recorded, not started: its page offers to resume)."""
    operation, _ = BulkOperation.objects.get_or_create(
        requested_by_label="boss", defaults={"action": "retry", "max_run_id": 0}
    )
    return operation.pk


def state() -> tuple[Any, ...]:
    """Everything a request could change."""
    return (
        sorted(Run.objects.values_list("task_id", "state", "cancel_requested_at")),
        sorted(PeriodicTask.objects.values_list("pk", "name", "enabled", "description", "kwargs")),
        sorted(ApiToken.objects.values_list("pk", "revoked_at")),
        sorted(AlertRule.objects.values_list("pk", "name", "enabled", "updated_at")),
        sorted(AlertChannel.objects.values_list("pk", "name", "secret", "updated_at")),
        AlertDelivery.objects.count(),
        AuditEntry.objects.count(),
        sorted(QueuePause.objects.values_list("queue", "paused_by_label")),
    )


def csrf_client(world: dict[str, Any]) -> Client:
    """A client signed in as the superuser that, like a browser, gets no CSRF exemption."""
    return signed_in(world["session"], enforce_csrf_checks=True)


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_an_action_refuses_get(world: dict[str, Any], name: str) -> None:
    client = csrf_client(world)
    before = state()

    response = client.get(url_of(name, world))

    assert response.status_code == 405, name
    assert response["Allow"] == "POST"
    assert state() == before


@pytest.mark.parametrize("name", sorted(FORMS | READS))
def test_a_page_get_changes_nothing(world: dict[str, Any], broker: str, name: str) -> None:
    client = csrf_client(world)
    before = state()

    response = client.get(url_of(name, world))

    assert response.status_code in {200, 404}, (name, response.status_code)  # 404: no file
    assert state() == before


@pytest.mark.parametrize("name", sorted(ACTIONS | FORMS | READS))
def test_a_dashboard_post_without_the_csrf_token_is_refused(
    world: dict[str, Any], broker: str, name: str
) -> None:
    client = csrf_client(world)
    before = state()
    data = {
        "action": "retry", "run": [world["failed"].pk], "schedule": [world["schedule"].pk],
        "enabled": "0", "steps": "1", "name": "x",
    }  # fmt: skip

    response = client.post(url_of(name, world), data)

    assert response.status_code == 403, name
    assert b"CSRF verification failed" in response.content
    assert state() == before


# Every other URL of the URL conf (the admin's, the login and logout pages), as enumerated by
# the access tests: with the session of a superuser, a POST without the token is refused.
OTHER_PAGES = [u for u in URLS if not u.startswith(API) and not u.startswith(("/runs", "/jobs",
    "/schedules", "/workers", "/audit", "/tokens")) and u != "/"]  # fmt: skip


def test_the_other_pages_are_enumerated() -> None:
    assert "/admin/django_celery_beat/periodictask/" in OTHER_PAGES
    assert "/admin/django_celery_beat/periodictask/x/delete/" in OTHER_PAGES
    assert {"/login/", "/logout/", "/admin/login/", "/admin/logout/"} <= set(OTHER_PAGES)


@pytest.mark.parametrize("url", OTHER_PAGES)
def test_any_other_post_without_the_csrf_token_is_refused(world: dict[str, Any], url: str) -> None:
    client = csrf_client(world)
    pk = world["schedule"].pk
    url = url.replace("/periodictask/x/", f"/periodictask/{pk}/")  # a real one to delete
    before = state()

    response = client.post(
        url, {"post": "yes", "action": "delete_selected", "_selected_action": pk}
    )

    assert response.status_code == 403, url
    assert b"CSRF verification failed" in response.content
    assert state() == before


def test_an_anonymous_login_without_the_csrf_token_is_refused(world: dict[str, Any]) -> None:
    for url in ("/login/", "/admin/login/"):
        response = Client(enforce_csrf_checks=True).post(
            url, {"username": "boss", "password": "x-Secret-123"}
        )
        assert response.status_code == 403, url
        assert b"CSRF verification failed" in response.content


def test_with_the_token_the_same_post_works(world: dict[str, Any], broker: str) -> None:
    """The CSRF token is what the refusals above lacked: the pages do act with it."""
    client = csrf_client(world)
    page = client.get(url_of("run", world)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token is not None

    response = client.post(url_of("run_retry", world), {"csrfmiddlewaretoken": token.group(1)})

    assert response.status_code == 302
    assert Run.objects.filter(retry_of=world["failed"]).exists()


# --- the JSON API ---------------------------------------------------------------------------


def api_operations() -> list[tuple[str, set[str]]]:
    """(path, documented methods) for every path of the API's OpenAPI document."""
    paths = api.get_openapi_schema()["paths"]
    return [(path, {method.upper() for method in ops}) for path, ops in sorted(paths.items())]


API_PATHS = api_operations()
API_WRITES = [(path, m) for path, methods in API_PATHS for m in sorted(methods) if m != "GET"]


def api_url(path: str, world: dict[str, Any]) -> str:
    return (
        path.replace("{task_id}", world["queued"].task_id)
        .replace("{pk}", str(world["schedule"].pk))
        .replace("{name}", "low")
    )


def test_the_api_writes_are_enumerated() -> None:
    assert ("/api/v1/runs", "POST") in API_WRITES
    assert ("/api/v1/schedules/{pk}", "DELETE") in API_WRITES
    assert len(API_WRITES) >= 7


@pytest.mark.parametrize(("path", "methods"), API_PATHS, ids=[p for p, _ in API_PATHS])
def test_an_api_method_it_does_not_document_is_405(
    world: dict[str, Any], path: str, methods: set[str]
) -> None:
    client = Client(enforce_csrf_checks=True)
    auth = {"Authorization": f"Bearer {world['raw_token']}"}
    before = state()

    for method in sorted({"GET", *WRITE_METHODS} - methods):
        response = client.generic(
            method, api_url(path, world), "{}", content_type="application/json", headers=auth
        )
        assert response.status_code == 405, (method, path, response.status_code)
    assert state() == before


@pytest.mark.parametrize(("path", "method"), API_WRITES, ids=[f"{m} {p}" for p, m in API_WRITES])
def test_an_api_write_with_a_session_but_no_token_is_401(
    world: dict[str, Any], path: str, method: str
) -> None:
    client = csrf_client(world)
    client.get("/")  # sets the CSRF cookie; send the token too: it still does not count
    csrf = client.cookies["csrftoken"].value
    before = state()

    response = client.generic(
        method, api_url(path, world), "{}", content_type="application/json",
        headers={"X-CSRFToken": csrf},
    )  # fmt: skip

    assert response.status_code == 401, (method, path)
    assert state() == before


@pytest.mark.parametrize(("path", "method"), API_WRITES, ids=[f"{m} {p}" for p, m in API_WRITES])
def test_an_api_write_with_a_token_needs_no_csrf_token(
    world: dict[str, Any], broker: str, path: str, method: str
) -> None:
    """No cookie acts through the API, so there is nothing for CSRF to protect: a token and
    no CSRF token is answered by the operation itself (here: created, done, or invalid input)."""
    client = Client(enforce_csrf_checks=True)

    response = client.generic(
        method, api_url(path, world), "{}", content_type="application/json",
        headers={"Authorization": f"Bearer {world['raw_token']}"},
    )  # fmt: skip

    assert response.status_code not in {401, 403, 405}, (method, path, response.content)
