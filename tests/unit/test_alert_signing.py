"""The webhook signature and bodies, without a database: what a receiver verifies."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

from tasks_app.alerts import channels
from tasks_app.models import AlertChannel, AlertChannelKind, AlertMessage, WebhookFormat

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PAYLOAD: dict[str, Any] = {
    "event": "fired",
    "subject": "[Taskdeck] Nightly: reports.generate failed",
    "rule": {"id": 3, "name": "Nightly", "kind": "run_failed"},
    "alert_count": 2,
    "alerts": [
        {
            "id": 7,
            "summary": "reports.generate failed: <KeyError> & more",
            "job": "reports.generate",
            "schedule": None,
            "task_id": "abc",
            "state": "FAILURE",
            "url": "https://taskdeck.example.com/runs/abc/",
            "fired_at": "2025-03-01T11:59:00+00:00",
            "resolved_at": None,
        }
    ],
    "more": 1,
}


def channel(payload_format: str = WebhookFormat.TASKDECK) -> AlertChannel:
    return AlertChannel(
        name="hook", kind=AlertChannelKind.WEBHOOK, url="https://hooks.example.com/x",
        secret="s3cret", payload_format=payload_format,
    )  # fmt: skip


def message() -> AlertMessage:
    return AlertMessage(event="fired", subject=str(PAYLOAD["subject"]), payload=PAYLOAD)


def test_sign_is_hmac_sha256_of_the_exact_body_in_hex() -> None:
    # The well-known HMAC-SHA256 example (key "key", the quick brown fox).
    body = b"The quick brown fox jumps over the lazy dog"
    expected = "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    assert channels.sign("key", body) == expected
    assert channels.sign("key", body + b" ") != expected  # one byte more: another signature
    assert channels.sign("other", body) != expected


def test_a_receiver_verifies_the_signed_body_as_the_readme_shows() -> None:
    hook = channel()
    body = channels.webhook_body(hook, message(), delivery_id=42, attempt=1, at=AT)
    headers = channels.webhook_headers(hook, message(), body, delivery_id=42)

    # The receiver's side: the raw body as received, the shared secret, a constant-time compare.
    digest = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Taskdeck-Signature"], f"sha256={digest}")

    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "Taskdeck-Alerts/1"
    assert headers["X-Taskdeck-Event"] == "fired"
    assert headers["X-Taskdeck-Delivery"] == "42"


def test_the_taskdeck_body_is_the_payload_plus_the_delivery_fields_only() -> None:
    body = channels.webhook_body(channel(), message(), delivery_id=42, attempt=3, at=AT)
    assert json.loads(body) == {
        **PAYLOAD,
        "delivery_id": 42,
        "attempt": 3,
        "sent_at": "2025-03-01T12:00:00+00:00",
    }


def test_the_slack_body_is_text_with_slack_escaping_and_links() -> None:
    body = channels.webhook_body(
        channel(WebhookFormat.SLACK), message(), delivery_id=42, attempt=1, at=AT
    )
    decoded = json.loads(body)
    assert list(decoded) == ["text"]
    lines = decoded["text"].splitlines()
    assert lines[0] == "*[Taskdeck] Nightly: reports.generate failed*"
    # <, > and & would be Slack markup: escaped, so a job's error cannot forge a link.
    assert lines[1] == (
        "• reports.generate failed: &lt;KeyError&gt; &amp; more "
        "(<https://taskdeck.example.com/runs/abc/|open>)"
    )
    assert lines[2] == "…and 1 more."


def test_email_addresses_are_one_per_line() -> None:
    assert channels.email_addresses(" a@example.com \n\n b@example.com\r\n") == [
        "a@example.com",
        "b@example.com",
    ]


def test_the_email_text_lists_each_alert() -> None:
    text = channels.email_text(PAYLOAD)
    assert text.startswith("[Taskdeck] Nightly: reports.generate failed\n")
    assert "Rule: Nightly (run_failed)" in text
    assert "- reports.generate failed: <KeyError> & more" in text
    assert "  job: reports.generate, state: FAILURE" in text
    assert "  https://taskdeck.example.com/runs/abc/" in text
    assert "...and 1 more." in text


def test_a_url_that_is_not_http_is_refused_without_a_request() -> None:
    outcome = channels.post("file:///etc/passwd", b"{}", {}, timeout=1)
    assert (outcome.ok, outcome.final) == (False, True)
    assert "http(s)" in outcome.error


def test_a_url_with_non_ascii_characters_fails_at_once_without_a_request() -> None:
    outcome = channels.post("https://hooks.example/bücher", b"{}", {}, timeout=1)
    assert (outcome.ok, outcome.final) == (False, True)  # no retry can help
    assert outcome.error.startswith("The webhook URL has non-ASCII characters")
