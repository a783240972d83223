"""Every response carries the Content-Security-Policy (and the other security headers): every
URL of the URL conf as the superuser, anonymous and as a signed-in user who is not staff, htmx
partials, form errors, 404s and the lockout page. The policy allows no inline script or style
and no eval anywhere; the templates hold no inline script, style, on*= handler or style=."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tasks_app.models import Run, RunState
from tests.integration.security.test_access import URLS
from tests.support.shared_rows import module_rows, refetch, session_of, signed_in

pytestmark = pytest.mark.django_db

POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
TEMPLATES = Path(settings.BASE_DIR) / "templates"


def policy_of(response: Any) -> dict[str, str]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.wsgi_request.path}"
    parts = [part.strip().split(" ", 1) for part in header.split(";") if part.strip()]
    return dict(parts)


def assert_secured(response: Any) -> None:
    assert policy_of(response) == POLICY, response.wsgi_request.path
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    if response.headers.get("Content-Type", "").startswith("text/html"):
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_the_policy_has_no_unsafe_source() -> None:
    directives = settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]
    for values in directives.values():
        assert not [v for v in values if "unsafe" in v or v in {"*", "http:", "https:"}]
    assert {name: " ".join(values) for name, values in directives.items()} == POLICY


@pytest.fixture(scope="module")
def shared(django_db_setup: None, django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    """A failed run, and sessions of the superuser and of a signed-in user who is not staff:
    made once for the module's hundreds of requests (tests.support.shared_rows)."""
    with module_rows(django_db_blocker):
        run = Run.objects.create(
            task_id="x", job_name="demo.flaky", state=RunState.FAILURE, queued_at=timezone.now(),
            params={"failure_rate": 1.0},
        )  # fmt: skip
        superuser = User.objects.create_superuser("boss", password="x-Secret-123")
        visitor = User.objects.create_user("visitor", password="x-Secret-123")
        yield {"run": run, "boss": session_of(superuser), "visitor": session_of(visitor)}


@pytest.fixture
def run(db: None, shared: dict[str, Any]) -> Run:
    fresh: Run = refetch(shared["run"])
    return fresh


@pytest.mark.parametrize("url", URLS)
def test_every_url_answers_with_the_policy(shared: dict[str, Any], run: Run, url: str) -> None:
    """The superuser, an anonymous visitor and a non-staff user: pages, redirects, 403s, 404s,
    405s, the API's JSON and docs."""
    html_seen = 0
    for client in (signed_in(shared["boss"]), Client(), signed_in(shared["visitor"])):
        response = client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        assert_secured(response)
        html_seen += response.headers.get("Content-Type", "").startswith("text/html")
    if not url.startswith("/api/v1/") or url.endswith("/docs"):
        assert html_seen, f"{url} answered no HTML page"


def test_partials_form_errors_and_missing_pages_carry_it_too(
    shared: dict[str, Any], run: Run
) -> None:
    client = signed_in(shared["boss"])

    responses = [
        client.get("/runs/", headers={"HX-Request": "true", "HX-Target": "rows"}),
        client.get(f"/runs/{run.task_id}/", headers={"HX-Request": "true", "HX-Target": "live"}),
        client.get("/schedules/params/", {"job": "demo.progress"}, headers={"HX-Request": "true"}),
        client.get("/schedules/preview/", {"kind": "crontab", "cron": "0 0 31 2 *"}),
        client.post("/jobs/demo.progress/", {"steps": "0"}),  # 400 with the form's errors
        client.get("/no/such/page/"),
        client.get("/runs/no-such-run/"),
    ]

    assert [r.status_code for r in responses] == [200, 200, 200, 200, 400, 404, 404]
    for response in responses:
        assert_secured(response)


def test_the_lockout_page_carries_it(client: Client) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        response = client.post("/login/", {"username": "nobody", "password": "wrong"})

    assert response.status_code == 429
    assert_secured(response)


INLINE = {
    "an inline <script> block": re.compile(
        r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>"
    ),
    "a <style> block": re.compile(r"<style\b"),
    "a style= attribute": re.compile(r"\sstyle\s*=", re.IGNORECASE),
    "an on*= handler": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "a javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
    "an htmx trigger filter (needs eval)": re.compile(r"hx-trigger=\"[^\"]*\["),
    "hx-on (needs eval)": re.compile(r"hx-on"),
}


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES))
)
def test_no_template_needs_an_unsafe_policy(template: Path) -> None:
    text = template.read_text()
    found = [what for what, pattern in INLINE.items() if pattern.search(text)]

    assert found == [], f"{template.relative_to(TEMPLATES)} has {', '.join(found)}"
