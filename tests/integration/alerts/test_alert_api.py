"""The alerting API with real tokens: rules and channels created, read, changed and deleted;
bad input answered 400 naming the field with nothing stored; 403 without the permission; a
secret answered once; webhook URLs masked; firing alerts and the delivery log."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import Permission, User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import Client

from tasks_app import services
from tasks_app.api.app import api as api_app
from tasks_app.models import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertMessage,
    AlertRule,
    AuditEntry,
    DeliveryState,
    RunState,
)
from tasks_app.services import Actor, ChannelDefinition, RuleDefinition
from tasks_app.tokens import issue_token
from tests.support import ledger

pytestmark = pytest.mark.django_db

API = "/api/v1"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/very-secret-path"


class Api:
    def __init__(self, client: Client, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(API + path, params, headers=self.headers)

    def send(self, method: str, path: str, body: Any = None) -> Any:
        call = getattr(self.client, method)
        data = json.dumps(body if body is not None else {})
        return call(API + path, data, content_type="application/json", headers=self.headers)


def token_for(username: str, *, manage: bool) -> str:
    user = User.objects.create_user(username, password="x-Secret-123", is_staff=True)
    if manage:
        user.user_permissions.add(Permission.objects.get(codename="manage_alerts"))
    return issue_token(user, "ci")[1]


@pytest.fixture
def api(client: Client) -> Api:
    return Api(client, token_for("manager", manage=True))


@pytest.fixture
def viewer_api(client: Client) -> Api:
    return Api(client, token_for("viewer", manage=False))


def webhook_body(**changes: Any) -> dict[str, Any]:
    return {"name": "ops hook", "kind": "webhook", "url": SLACK_URL, **changes}


def rule_body(**changes: Any) -> dict[str, Any]:
    return {"name": "slow starts", "kind": "queued_too_long", "deadline": "15m", **changes}


def refusal(response: Any, field: str) -> str:
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors, errors
    return " ".join(errors[field])


def test_rules_are_created_read_changed_and_deleted(api: Api) -> None:
    channel = api.send("post", "/alerts/channels", webhook_body()).json()

    created = api.send(
        "post",
        "/alerts/rules",
        rule_body(job_name="demo.progress", channels=[channel["id"]], throttle_minutes=0),
    )

    assert created.status_code == 201, created.content
    rule = created.json()
    assert rule["deadline_seconds"] == 900
    assert rule["deadline"] == "15m"
    assert rule["deadline_words"] == "15 minutes"
    assert rule["channels"] == [{"id": channel["id"], "name": "ops hook"}]
    assert rule["scope"] == "job demo.progress"
    assert rule["firing"] == 0
    assert api.get("/alerts/rules").json() == [rule]
    assert api.get(f"/alerts/rules/{rule['id']}").json() == rule

    changed = api.send("patch", f"/alerts/rules/{rule['id']}", {"deadline": 7200, "enabled": False})
    assert changed.status_code == 200, changed.content
    body = changed.json()
    assert (body["deadline"], body["enabled"], body["throttle_minutes"]) == ("2h", False, 0)
    assert body["channels"] == rule["channels"]  # untouched

    assert api.send("delete", f"/alerts/rules/{rule['id']}").status_code == 204
    assert api.get(f"/alerts/rules/{rule['id']}").status_code == 404
    actions = AuditEntry.objects.filter(target_type="alert_rule").values_list("action", flat=True)
    assert sorted(actions) == ["alert_rule.create", "alert_rule.delete", "alert_rule.edit"]
    assert AuditEntry.objects.get(action="alert_rule.create").actor_label == "manager (token ci)"


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (rule_body(deadline="soon"), "deadline", "not a duration"),
        (rule_body(deadline=None), "deadline", "Give the deadline"),
        (rule_body(deadline="45d"), "deadline", "at most 30 days"),
        (rule_body(deadline=0), "deadline", ""),
        (rule_body(job_name="no.such.job"), "job_name", "No job named"),
        (rule_body(kind="schedule_failing", schedule_name="nope"), "schedule_name", "No schedule"),
        (rule_body(channels=[424242]), "channels", "No channel with id 424242"),
        (rule_body(throttle_minutes=5000), "throttle_minutes", ""),
        (rule_body(threshold_count=0), "threshold_count", ""),
        (rule_body(kind="sometimes"), "kind", ""),
        (rule_body(name=""), "name", ""),
        (rule_body(surprise=1), "surprise", ""),
    ],
)
def test_bad_rules_are_refused_naming_the_field(
    api: Api, body: dict[str, Any], field: str, words: str
) -> None:
    response = api.send("post", "/alerts/rules", body)
    message = refusal(response, field)
    assert words in message
    assert not message.startswith("Value error")  # pydantic's prefix, not for the user
    assert not AlertRule.objects.exists()


def test_a_taken_rule_name_is_refused(api: Api) -> None:
    assert api.send("post", "/alerts/rules", rule_body()).status_code == 201
    assert "already has this name" in refusal(
        api.send("post", "/alerts/rules", rule_body()), "name"
    )
    other = api.send("post", "/alerts/rules", rule_body(name="other")).json()
    patched = api.send("patch", f"/alerts/rules/{other['id']}", {"name": "slow starts"})
    assert "already has this name" in refusal(patched, "name")


def test_a_webhook_channel_answers_its_secret_once_and_its_url_masked(api: Api) -> None:
    created = api.send("post", "/alerts/channels", webhook_body(payload_format="slack"))

    assert created.status_code == 201, created.content
    body = created.json()
    stored = AlertChannel.objects.get()
    assert body["secret"] == stored.secret
    assert len(stored.secret) >= 40
    assert body["url"] == "https://hooks.slack.com/…"
    assert body["has_secret"] is True
    assert body["payload_format"] == "slack"
    for response in (api.get("/alerts/channels"), api.get(f"/alerts/channels/{body['id']}")):
        text = response.content.decode()
        assert stored.secret not in text
        assert "very-secret-path" not in text
        assert '"secret"' not in text

    rotated = api.send("post", f"/alerts/channels/{body['id']}/rotate-secret")
    assert rotated.status_code == 200
    stored.refresh_from_db()
    assert rotated.json()["secret"] == stored.secret != body["secret"]

    # A PATCH without url or secret keeps both, and answers no secret.
    patched = api.send("patch", f"/alerts/channels/{body['id']}", {"timeout_seconds": 12})
    assert patched.status_code == 200
    assert patched.json()["secret"] is None
    kept = AlertChannel.objects.get()
    assert (kept.url, kept.secret, kept.timeout_seconds) == (SLACK_URL, stored.secret, 12)
    for entry in AuditEntry.objects.filter(target_type="alert_channel"):
        text = json.dumps(entry.details)
        assert stored.secret not in text
        assert body["secret"] not in text
        assert "very-secret-path" not in text


def test_a_given_secret_is_kept_and_answered(api: Api) -> None:
    secret = "a-receiver-chosen-secret-0123456789"
    created = api.send("post", "/alerts/channels", webhook_body(secret=secret))
    assert created.json()["secret"] == secret
    assert AlertChannel.objects.get().secret == secret


def test_an_email_channel_and_deleting_it(api: Api) -> None:
    created = api.send(
        "post",
        "/alerts/channels",
        {"name": "oncall", "kind": "email", "email_to": ["a@example.com", "b@example.com"]},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["email_to"] == ["a@example.com", "b@example.com"]
    assert body["secret"] is None
    assert body["has_secret"] is False
    assert body["url"] == ""
    rotated = api.send("post", f"/alerts/channels/{body['id']}/rotate-secret")
    assert rotated.status_code == 409
    assert api.send("delete", f"/alerts/channels/{body['id']}").status_code == 204
    assert not AlertChannel.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            {"name": "m", "kind": "email", "email_to": ["ok@example.com", "nope"]},
            "email_to",
            "line 2",
        ),
        ({"name": "m", "kind": "email", "email_to": []}, "email_to", "at least one"),
        (webhook_body(url="ftp://example.com/x"), "url", "http:// or https://"),
        (webhook_body(url="not a url"), "url", "http:// or https://"),
        (webhook_body(url=None), "url", "Give the webhook's URL"),
        (webhook_body(timeout_seconds=0), "timeout_seconds", ""),
        (webhook_body(timeout_seconds=31), "timeout_seconds", ""),
        (webhook_body(max_attempts=11), "max_attempts", ""),
        (webhook_body(secret="short"), "secret", ""),
        (webhook_body(payload_format="xml"), "payload_format", ""),
    ],
)
def test_bad_channels_are_refused_naming_the_field(
    api: Api, body: dict[str, Any], field: str, words: str
) -> None:
    response = api.send("post", "/alerts/channels", body)
    assert words in refusal(response, field)
    assert not AlertChannel.objects.exists()
    assert not AuditEntry.objects.exists()


def test_too_many_recipients_are_refused(api: Api, settings: Any) -> None:
    settings.TASKDECK_EMAIL_MAX_RECIPIENTS = 2
    body = {"name": "m", "kind": "email", "email_to": [f"u{n}@example.com" for n in range(3)]}
    assert "at most 2" in refusal(api.send("post", "/alerts/channels", body), "email_to")


def test_changes_need_the_permission(viewer_api: Api) -> None:
    actor = Actor(system="test")
    channel, secret = services.alert_channel_save(
        ChannelDefinition(name="hook", kind="webhook", url=SLACK_URL), actor=actor
    )
    rule = services.alert_rule_save(RuleDefinition(name="r", kind="run_failed"), actor=actor)
    before = AuditEntry.objects.count()

    refused = [
        viewer_api.send("post", "/alerts/rules", rule_body()),
        viewer_api.send("patch", f"/alerts/rules/{rule.pk}", {"enabled": False}),
        viewer_api.send("delete", f"/alerts/rules/{rule.pk}"),
        viewer_api.send("post", "/alerts/channels", webhook_body(name="other")),
        viewer_api.send("patch", f"/alerts/channels/{channel.pk}", {"enabled": False}),
        viewer_api.send("delete", f"/alerts/channels/{channel.pk}"),
        viewer_api.send("post", f"/alerts/channels/{channel.pk}/rotate-secret"),
        viewer_api.send("post", f"/alerts/channels/{channel.pk}/test"),
    ]

    assert [r.status_code for r in refused] == [403] * len(refused)
    assert all("manage_alerts" in r.json()["detail"] for r in refused)
    channel.refresh_from_db()
    rule.refresh_from_db()
    assert channel.secret == secret
    assert channel.enabled
    assert rule.enabled
    assert AlertRule.objects.count() == 1
    assert AlertChannel.objects.count() == 1
    assert AuditEntry.objects.count() == before
    # Reading needs no more than a token.
    assert viewer_api.get("/alerts/rules").status_code == 200
    assert viewer_api.get("/alerts/channels").status_code == 200


def test_alerts_deliveries_and_a_test_message(api: Api, broker: str) -> None:
    channel, _ = services.alert_channel_save(
        ChannelDefinition(name="hook", kind="webhook", url=SLACK_URL), actor=Actor(system="t")
    )
    rule = services.alert_rule_save(
        RuleDefinition(name="failures", kind="run_failed"), actor=Actor(system="t")
    )
    run = ledger.make_run(RunState.FAILURE)
    firing = Alert.objects.create(rule=rule, key=f"run:{run.task_id}", run=run, summary="failed")
    message = AlertMessage.objects.create(rule=rule, event=AlertEvent.FIRED, subject="s")
    AlertDelivery.objects.create(
        message=message,
        channel=channel,
        channel_name="hook",
        state=DeliveryState.FAILED,
        attempts=3,
        response_status=500,
        last_error="HTTP 500\ntraceback lines",
    )

    alerts = api.get("/alerts").json()
    assert [a["id"] for a in alerts["firing"]] == [firing.pk]
    assert alerts["resolved"] == []
    assert alerts["firing"][0]["task_id"] == run.task_id
    assert alerts["firing"][0]["rule"] == {"id": rule.pk, "name": "failures", "kind": "run_failed"}
    assert api.get("/alerts/rules").json()[0]["firing"] == 1

    queued = api.send("post", f"/alerts/channels/{channel.pk}/test")
    assert queued.status_code == 202, queued.content
    assert queued.json()["event"] == "test"
    assert queued.json()["state"] == "pending"

    log = api.get("/alerts/deliveries").json()
    assert [d["event"] for d in log] == ["test", "fired"]
    assert log[1]["last_error"] == "HTTP 500"
    assert log[1]["response_status"] == 500
    assert log[1]["next_attempt_at"] is None
    assert log[0]["next_attempt_at"] is not None
    assert len(api.get("/alerts/deliveries", limit=1).json()) == 1
    assert "limit" in api.get("/alerts/deliveries", limit=0).json()["errors"]


@pytest.fixture
def bearer(db: None, broker: str) -> Iterator[str]:
    """As in test_api_conformance.py: a superuser's token, and requests through the WSGI
    handler that leave the test's database connection open."""
    user = User.objects.create_superuser("fuzzer", password="x-Secret-123")
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield f"Bearer {issue_token(user, 'schemathesis')[1]}"
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def test_each_alert_operation_answers_a_valid_request_as_the_document_says(bearer: str) -> None:
    """One valid request per alerting operation, on real rows, answered 2xx with a body that
    matches the OpenAPI document (as test_api_conformance.py checks the others)."""
    schema = schemathesis.openapi.from_dict(api_app.get_openapi_schema(path_prefix="/api/v1/"))
    schema.app = get_wsgi_application()
    headers = {"Authorization": bearer}
    answered: set[tuple[str, str]] = set()

    def call(path: str, method: str, **parts: Any) -> Any:
        case = schema["/api/v1" + path][method].Case(**parts)
        response = case.call_and_validate(headers=headers)
        assert 200 <= response.status_code < 300, (method, path, response.text)
        answered.add((path, method))
        return response

    channel = call("/alerts/channels", "POST", body=webhook_body()).json()
    rule = call("/alerts/rules", "POST", body=rule_body(channels=[channel["id"]])).json()
    email = {"name": "mail", "kind": "email", "email_to": ["ops@example.com"]}
    call("/alerts/channels", "POST", body=email)
    Alert.objects.create(rule_id=rule["id"], key="run:x", summary="late")
    channel_path = {"path_parameters": {"pk": channel["id"]}}
    rule_path = {"path_parameters": {"pk": rule["id"]}}

    call("/alerts/rules", "GET")
    call("/alerts/rules/{pk}", "GET", **rule_path)
    call("/alerts/rules/{pk}", "PATCH", body={"deadline": "1h", "enabled": False}, **rule_path)
    call("/alerts/channels", "GET")
    call("/alerts/channels/{pk}", "GET", **channel_path)
    call("/alerts/channels/{pk}", "PATCH", body={"max_attempts": 3}, **channel_path)
    call("/alerts/channels/{pk}/rotate-secret", "POST", **channel_path)
    call("/alerts/channels/{pk}/test", "POST", **channel_path)
    call("/alerts", "GET")
    call("/alerts/deliveries", "GET", query={"limit": 10})
    call("/alerts/rules/{pk}", "DELETE", **rule_path)
    call("/alerts/channels/{pk}", "DELETE", **channel_path)

    documented = {
        (path.removeprefix("/api/v1"), method.upper())
        for path, operations in api_app.get_openapi_schema(path_prefix="/api/v1/")["paths"].items()
        for method in operations
        if path.startswith("/api/v1/alerts")
    }
    assert answered == documented


# --- restricted jobs and webhook targets (review 13, items 3 and 5) ---------------------------

RESTRICTED = "taskdeck.cleanup"  # asks for tasks_app.run_cleanup to read its runs
SECRET_ERROR = "cleanup-secret-5521"


def test_alerts_about_a_job_the_caller_may_not_read_come_without_their_summary(
    viewer_api: Api, client: Client
) -> None:
    rule = services.alert_rule_save(
        RuleDefinition(name="failures", kind="run_failed"), actor=Actor(system="t")
    )
    run = ledger.make_run(RunState.FAILURE, job_name=RESTRICTED)
    summary = f"{RESTRICTED} failed: {SECRET_ERROR}"
    firing = Alert.objects.create(
        rule=rule, key=f"run:{run.task_id}", run=run, job_name=RESTRICTED, summary=summary
    )
    Alert.objects.create(
        rule=rule, key="run:old", job_name=RESTRICTED, summary=summary, resolved_at=firing.fired_at
    )
    message = AlertMessage.objects.create(
        rule=rule, event=AlertEvent.FIRED, subject=f"[Taskdeck] failures: {summary}"
    )
    Alert.objects.filter(pk=firing.pk).update(fired_message=message)
    AlertDelivery.objects.create(message=message, channel_name="ops", state=DeliveryState.SENT)

    alerts = viewer_api.get("/alerts")
    log = viewer_api.get("/alerts/deliveries")

    assert SECRET_ERROR not in alerts.content.decode()
    assert SECRET_ERROR not in log.content.decode()
    body = alerts.json()
    for shown in (body["firing"][0], body["resolved"][0]):
        assert shown["summary_hidden"] is True
        assert shown["summary"] == "Hidden: needs this job's permission"
        assert shown["job"] == RESTRICTED  # listed, as the runs are
    assert body["firing"][0]["task_id"] == run.task_id
    assert log.json()[0]["subject"] == "Hidden: needs this job's permission"

    keeper = User.objects.create_user("keeper", password="x-Secret-123", is_staff=True)
    keeper.user_permissions.add(Permission.objects.get(codename="run_cleanup"))
    keeper_api = Api(client, issue_token(keeper, "ci")[1])
    shown = keeper_api.get("/alerts").json()["firing"][0]
    assert (shown["summary"], shown["summary_hidden"]) == (summary, False)
    assert SECRET_ERROR in keeper_api.get("/alerts/deliveries").json()[0]["subject"]


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/hook",
        "http://127.0.0.1:8000/hook",
        "https://172.16.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00::1]/hook",
    ],
)
def test_a_webhook_to_a_non_public_address_is_refused(api: Api, settings: Any, url: str) -> None:
    settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE = False

    assert "public" in refusal(api.send("post", "/alerts/channels", webhook_body(url=url)), "url")
    assert not AlertChannel.objects.exists()


def test_a_patch_cannot_point_a_webhook_at_a_private_address(api: Api, settings: Any) -> None:
    settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE = False
    created = api.send("post", "/alerts/channels", webhook_body()).json()

    patched = api.send("patch", f"/alerts/channels/{created['id']}", {"url": "http://10.0.0.8/"})

    assert "not a public address" in refusal(patched, "url")
    assert AlertChannel.objects.get().url == SLACK_URL
    settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE = True
    allowed = api.send("patch", f"/alerts/channels/{created['id']}", {"url": "http://10.0.0.8/"})
    assert allowed.status_code == 200, allowed.content
    assert AlertChannel.objects.get().url == "http://10.0.0.8/"


@pytest.mark.parametrize("path", ["/alerts/rules/{}", "/alerts/channels/{}"])
def test_an_id_no_row_can_have_is_a_404_not_a_server_error(api: Api, path: str) -> None:
    """Seen from the fuzzer: 154489261042441682944 overflowed SQLite's integer (a 500)."""
    for pk in (154489261042441682944, 2**63, 0):
        assert api.get(path.format(pk)).status_code == 404, pk
