"""Every page answers only the HTTP methods it is for: a view that only reads takes GET (and
HEAD), an action only POST, a form page both; anything else is 405 with an Allow header, even
for a staff superuser. Walks every URL pattern of the URLconf except Django's admin and the
JSON API (each answers for its own methods), so a new page must be listed here to pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tasks_app.tokens import issue_token
from tests.integration.security.test_access import _sample
from tests.support.shared_rows import module_rows, session_of, signed_in

GET = frozenset({"GET"})
POST = frozenset({"POST"})
BOTH = GET | POST
# Every page by URL name, with the methods it takes (HEAD goes with GET; OPTIONS is not tested).
EXPECTED: dict[str, frozenset[str]] = {
    "login": BOTH,
    "logout": POST,
    "tasks_app:overview": GET,
    "tasks_app:jobs": GET,
    "tasks_app:launch": BOTH,
    "tasks_app:runs": GET,
    "tasks_app:runs_bulk": POST,
    "tasks_app:runs_retry_failed": BOTH,
    "tasks_app:bulk_operation_new": BOTH,
    "tasks_app:bulk_operation_offer": GET,
    "tasks_app:bulk_operation": GET,
    "tasks_app:bulk_operation_resume": POST,
    "tasks_app:run": GET,
    "tasks_app:run_retry": POST,
    "tasks_app:run_rerun": BOTH,
    "tasks_app:run_cancel": POST,
    "tasks_app:run_artifact": GET,
    "tasks_app:schedules": GET,
    "tasks_app:schedule_new": BOTH,
    "tasks_app:schedules_bulk": POST,
    "tasks_app:schedule_preview": GET,
    "tasks_app:schedule_params": GET,
    "tasks_app:schedules_calendar": GET,
    "tasks_app:schedule": GET,
    "tasks_app:schedule_edit": BOTH,
    "tasks_app:schedule_toggle": POST,
    "tasks_app:schedule_run": POST,
    "tasks_app:schedule_delete": BOTH,
    "tasks_app:schedule_reset": POST,
    "tasks_app:workers": GET,
    "tasks_app:workers_panel": GET,
    "tasks_app:queue_pause": POST,
    "tasks_app:queue_resume": POST,
    "tasks_app:audit": GET,
    "tasks_app:alerts": GET,
    "tasks_app:alert_rule_new": BOTH,
    "tasks_app:alert_rule_edit": BOTH,
    "tasks_app:alert_rule_delete": BOTH,
    "tasks_app:alert_channel_new": BOTH,
    "tasks_app:alert_channel_edit": BOTH,
    "tasks_app:alert_channel_delete": BOTH,
    "tasks_app:alert_channel_rotate_secret": POST,
    "tasks_app:alert_channel_test": POST,
    "metrics": GET,  # Prometheus' scrape (off, 404, unless TASKDECK_METRICS_TOKEN is set)
    "tasks_app:tokens": BOTH,
    "tasks_app:token_revoke": POST,
    "tasks_app:preferences": BOTH,
}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
NOT_WALKED = ("/admin/", "/api/")  # Django's admin; the API (django-ninja: 405 of its own)


def routes(
    patterns: list[URLPattern | URLResolver] | None = None, prefix: str = "/", namespace: str = ""
) -> Iterator[tuple[str, str]]:
    """(a sample URL, the pattern's namespaced name) for every URL pattern."""
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        path = prefix + _sample(pattern)
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from routes(pattern.url_patterns, path, inner)
        else:
            yield path, f"{namespace}{pattern.name}"


ROUTES = sorted((url, name) for url, name in routes() if not url.startswith(NOT_WALKED))


@pytest.fixture(scope="module")
def superuser_session(django_db_setup: None, django_db_blocker: Any) -> Iterator[str]:
    """A superuser's session, made once for the module's ~270 requests
    (tests.support.shared_rows)."""
    with module_rows(django_db_blocker):
        yield session_of(User.objects.create_superuser("walker", password="x-Secret-123"))


@pytest.fixture
def admin_client(db: None, superuser_session: str) -> Client:
    """pytest-django's admin_client, signed in once for the module rather than per test."""
    return signed_in(superuser_session)


def test_every_page_is_listed_with_its_methods() -> None:
    assert sorted(name for _, name in ROUTES) == sorted(EXPECTED)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "name", "method"),
    [(url, name, m) for url, name in ROUTES for m in METHODS if m not in EXPECTED[name]],
)
def test_a_method_a_page_does_not_take_is_405(
    admin_client: Client, url: str, name: str, method: str
) -> None:
    response = admin_client.generic(method, url)

    assert response.status_code == 405, (method, url)
    allowed = {m.strip() for m in response["Allow"].split(",")} - {"HEAD", "OPTIONS"}
    assert allowed == EXPECTED[name]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "name", "method"),
    [(url, name, m) for url, name in ROUTES for m in sorted(EXPECTED[name])]
    + [(url, name, "HEAD") for url, name in ROUTES if "GET" in EXPECTED[name]],
)
def test_the_methods_a_page_takes_still_reach_it(
    admin_client: Client, broker: str, url: str, name: str, method: str
) -> None:
    """With sample ids (most pages then answer 404): anything but 405, and never a 500."""
    response = admin_client.generic(method, url)

    assert response.status_code != 405, (method, url)
    assert response.status_code < 500, (method, url)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("/runs/", {"HX-Request": "true", "HX-Target": "rows"}),
        ("/workers/panel/", {"HX-Request": "true"}),
        ("/schedules/preview/?kind=interval&every=5&period=minutes", {"HX-Request": "true"}),
        ("/schedules/params/?job=taskdeck.ping", {"HX-Request": "true"}),
        ("/", {"HX-Request": "true"}),
    ],
)
def test_htmx_partials_still_answer(
    admin_client: Client, broker: str, url: str, headers: dict[str, str]
) -> None:
    response = admin_client.get(url, headers=headers)

    assert response.status_code == 200, url


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "url"),
    [("PUT", "/api/v1/jobs"), ("DELETE", "/api/v1/runs"), ("PATCH", "/api/v1/stats"),
     ("GET", "/api/v1/runs/x/cancel"), ("PUT", "/api/v1/runs/x/retry")],
)  # fmt: skip
def test_the_api_refuses_methods_its_operations_do_not_take(
    admin_user: User, method: str, url: str
) -> None:
    token = issue_token(admin_user, "t")[1]
    response = Client().generic(method, url, headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 405, (method, url)
