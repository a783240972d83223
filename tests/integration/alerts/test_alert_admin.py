"""Alert rules and channels in the Django admin: saved through the services (their rules shown
on the fields, the permission tasks_app.manage_alerts, the audit trail), a channel's secret
shown once and never after, its URL masked and kept when left blank."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from tasks_app import services
from tasks_app.models import Alert, AlertChannel, AlertRule, AuditEntry
from tasks_app.services import Actor, ChannelDefinition, RuleDefinition

pytestmark = pytest.mark.django_db

SLACK_URL = "https://hooks.slack.com/services/T000/B000/very-secret-path"
RULE_ADD = reverse("admin:tasks_app_alertrule_add")
CHANNEL_ADD = reverse("admin:tasks_app_alertchannel_add")
CHANNEL_LIST = reverse("admin:tasks_app_alertchannel_changelist")
MODEL_PERMS = [
    f"{verb}_{model}"
    for verb in ("add", "change", "view", "delete")
    for model in ("alertrule", "alertchannel")
]


def admin_user(username: str, *, manage: bool) -> User:
    user = User.objects.create_user(username, password="x-Secret-123", is_staff=True)
    codenames = MODEL_PERMS + (["manage_alerts"] if manage else [])
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return User.objects.get(pk=user.pk)


@pytest.fixture
def ops(client: Client) -> Client:
    client.force_login(admin_user("ops", manage=True))
    return client


@pytest.fixture
def onlooker(client: Client) -> Client:
    client.force_login(admin_user("onlooker", manage=False))
    return client


def rule_form(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "stuck runs",
        "kind": "running_too_long",
        "enabled": "on",
        "job_name": "",
        "schedule_name": "",
        "deadline": "2h",
        "threshold_count": "3",
        "throttle_minutes": "10",
        "notify_resolved": "on",
    }
    data.update(changes)
    return data


def channel_form(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "ops hook",
        "kind": "webhook",
        "enabled": "on",
        "email_to": "",
        "new_url": SLACK_URL,
        "payload_format": "taskdeck",
        "timeout_seconds": "5",
        "max_attempts": "5",
    }
    data.update(changes)
    return data


def test_a_rule_is_added_and_changed_through_the_services(ops: Client) -> None:
    response = ops.post(RULE_ADD, rule_form())

    assert response.status_code == 302, response.context and response.context["errors"]
    rule = AlertRule.objects.get()
    assert rule.threshold_seconds == 7200
    assert AuditEntry.objects.get(action="alert_rule.create").actor_label == "ops"

    change_url = reverse("admin:tasks_app_alertrule_change", args=[rule.pk])
    assert 'value="2h"' in ops.get(change_url).content.decode()
    response = ops.post(change_url, rule_form(deadline="45m"))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.threshold_seconds == 2700
    edit = AuditEntry.objects.get(action="alert_rule.edit")
    assert edit.details["after"] == {"threshold_seconds": 2700}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"deadline": "soon"}, "deadline", "is not a duration"),
        ({"deadline": ""}, "deadline", "Give the deadline"),
        ({"job_name": "no.such.job"}, "job_name", "No job named"),
        ({"throttle_minutes": "2000"}, "throttle_minutes", "0 to 1440"),
    ],
)
def test_the_services_rules_show_on_the_admin_fields(
    ops: Client, changes: dict[str, Any], field: str, words: str
) -> None:
    response = ops.post(RULE_ADD, rule_form(**changes))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert words in " ".join(errors[field]), errors
    assert not AlertRule.objects.exists()


def test_a_new_webhook_shows_its_secret_once_and_its_url_masked(ops: Client) -> None:
    response = ops.post(CHANNEL_ADD, channel_form())

    channel = AlertChannel.objects.get()
    html = response.content.decode()
    assert response.status_code == 200
    assert f'value="{channel.secret}"' in html
    assert "will not be shown again" in html
    assert "no-store" in response["Cache-Control"]
    assert "very-secret-path" not in html

    change_url = reverse("admin:tasks_app_alertchannel_change", args=[channel.pk])
    for url in (CHANNEL_LIST, change_url):
        later = ops.get(url).content.decode()
        assert channel.secret not in later, url
        assert "very-secret-path" not in later, url
        assert "https://hooks.slack.com/…" in later, url
    entry = AuditEntry.objects.get(action="alert_channel.create")
    assert channel.secret not in json.dumps(entry.details)


def test_changing_a_channel_keeps_a_blank_url_and_the_secret(ops: Client) -> None:
    channel, secret = services.alert_channel_save(
        ChannelDefinition(name="ops hook", kind="webhook", url=SLACK_URL), actor=Actor(system="t")
    )
    change_url = reverse("admin:tasks_app_alertchannel_change", args=[channel.pk])

    response = ops.post(change_url, channel_form(new_url="", max_attempts="2"))

    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.url, channel.secret, channel.max_attempts) == (SLACK_URL, secret, 2)

    bad = ops.post(change_url, channel_form(new_url="ftp://example.com/x"))
    assert bad.status_code == 200
    assert "http:// or https://" in " ".join(bad.context["adminform"].form.errors["new_url"])
    channel.refresh_from_db()
    assert channel.url == SLACK_URL


def test_rotate_secret_action_shows_the_new_one_once(ops: Client) -> None:
    channel, old = services.alert_channel_save(
        ChannelDefinition(name="ops hook", kind="webhook", url=SLACK_URL), actor=Actor(system="t")
    )

    response = ops.post(
        CHANNEL_LIST, {"action": "rotate_secret", "_selected_action": [str(channel.pk)]}
    )

    channel.refresh_from_db()
    assert response.status_code == 200
    assert channel.secret != old
    assert f'value="{channel.secret}"' in response.content.decode()
    assert AuditEntry.objects.filter(action="alert_channel.rotate_secret").count() == 1


def test_without_manage_alerts_the_admin_only_shows(onlooker: Client) -> None:
    channel, secret = services.alert_channel_save(
        ChannelDefinition(name="ops hook", kind="webhook", url=SLACK_URL), actor=Actor(system="t")
    )
    change_url = reverse("admin:tasks_app_alertchannel_change", args=[channel.pk])

    assert onlooker.post(RULE_ADD, rule_form()).status_code == 403
    assert onlooker.post(CHANNEL_ADD, channel_form(name="x")).status_code == 403
    assert (
        onlooker.post(change_url, channel_form(new_url="https://evil.example/")).status_code == 403
    )
    delete_url = reverse("admin:tasks_app_alertchannel_delete", args=[channel.pk])
    assert onlooker.post(delete_url, {"post": "yes"}).status_code == 403
    view = onlooker.get(change_url)
    assert view.status_code == 200
    assert "very-secret-path" not in view.content.decode()
    channel.refresh_from_db()
    assert (channel.url, channel.secret) == (SLACK_URL, secret)
    assert not AlertRule.objects.exists()


# --- restricted jobs and webhook targets (review 13, items 3 and 5) ---------------------------

RESTRICTED = "taskdeck.cleanup"  # asks for tasks_app.run_cleanup to read its runs
SECRET_ERROR = "cleanup-secret-5521"
ALERT_LIST = reverse("admin:tasks_app_alert_changelist")


def test_the_alert_list_hides_what_the_viewer_may_not_read(client: Client) -> None:
    user = admin_user("reader", manage=False)
    user.user_permissions.add(Permission.objects.get(codename="view_alert"))
    client.force_login(User.objects.get(pk=user.pk))
    rule = services.alert_rule_save(
        RuleDefinition(name="failures", kind="run_failed"), actor=Actor(system="t")
    )
    hidden = Alert.objects.create(
        rule=rule, key="run:a", job_name=RESTRICTED, summary=f"failed: {SECRET_ERROR}"
    )
    Alert.objects.create(rule=rule, key="run:b", job_name="demo.flaky", summary="failed: open-7")

    listed = client.get(ALERT_LIST).content.decode()
    assert SECRET_ERROR not in listed
    assert "Hidden: needs this job&#x27;s permission" in listed
    assert "failed: open-7" in listed
    # A search does not look in what it may not show, but finds the alert by its job.
    guessed = client.get(ALERT_LIST, {"q": SECRET_ERROR}).context["cl"].result_list
    assert list(guessed) == []
    by_job = client.get(ALERT_LIST, {"q": RESTRICTED}).context["cl"].result_list
    assert [alert.pk for alert in by_job] == [hidden.pk]
    assert [
        a.summary for a in client.get(ALERT_LIST, {"q": "open-7"}).context["cl"].result_list
    ] == ["failed: open-7"]
    change = reverse("admin:tasks_app_alert_change", args=[hidden.pk])
    assert client.get(change).status_code == 403

    user.user_permissions.add(Permission.objects.get(codename="run_cleanup"))
    client.force_login(User.objects.get(pk=user.pk))
    assert SECRET_ERROR in client.get(ALERT_LIST).content.decode()
    assert len(client.get(ALERT_LIST, {"q": SECRET_ERROR}).context["cl"].result_list) == 1
    assert SECRET_ERROR in client.get(change).content.decode()


def test_a_webhook_to_a_private_address_is_refused_on_the_url_field(
    ops: Client, settings: Any
) -> None:
    settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE = False

    response = ops.post(CHANNEL_ADD, channel_form(new_url="http://127.0.0.1:6379/"))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "not a public address" in " ".join(errors["new_url"]), errors
    assert not AlertChannel.objects.exists()
