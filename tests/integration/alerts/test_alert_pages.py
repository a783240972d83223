"""The Alerts page through the test client: what fires and what resolved, rules and channels with
their editors (inline errors for bad addresses, URLs and durations), a channel's secret shown
once, webhook URLs masked, the delivery log, permissions, CSRF, and hostile text escaped."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tasks_app import services
from tasks_app.alerts.evaluate import evaluate_all
from tasks_app.models import (
    Alert,
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertMessage,
    AlertRule,
    AuditEntry,
    DeliveryState,
    RollupMark,
    RunState,
)
from tasks_app.services import Actor, ChannelDefinition, RuleDefinition
from tasks_app.worker import presence
from tests.support import ledger
from tests.support.services import use_broker

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/very-secret-path"
PAGE = reverse("tasks_app:alerts")


def staff(username: str, *, manage: bool) -> User:
    user = User.objects.create_user(username, password="x-Secret-123", is_staff=True)
    if manage:
        user.user_permissions.add(Permission.objects.get(codename="manage_alerts"))
    return User.objects.get(pk=user.pk)  # fresh permission cache


@pytest.fixture
def manager_user() -> User:
    return staff("manager", manage=True)


@pytest.fixture
def manager(client: Client, manager_user: User) -> Client:
    client.force_login(manager_user)
    return client


@pytest.fixture
def viewer(client: Client) -> Client:
    client.force_login(staff("viewer", manage=False))
    return client


def system() -> Actor:
    return Actor(system="test")


def webhook(name: str = "ops hook", url: str = SLACK_URL) -> tuple[AlertChannel, str]:
    return services.alert_channel_save(
        ChannelDefinition(name=name, kind="webhook", url=url), actor=system()
    )


def rule_post(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "slow starts",
        "kind": "queued_too_long",
        "job_name": "demo.progress",
        "schedule_name": "",
        "deadline": "1h30m",
        "threshold_count": "3",
        "throttle_minutes": "10",
        "notify_resolved": "on",
        "enabled": "on",
    }
    data.update(changes)
    return data


def channel_post(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": "ops hook",
        "kind": "webhook",
        "email_to": "",
        "url": SLACK_URL,
        "payload_format": "slack",
        "secret": "",
        "timeout_seconds": "5",
        "max_attempts": "5",
        "enabled": "on",
    }
    data.update(changes)
    return data


def error_of(response: Any, field: str) -> str:
    form = response.context["form"]
    assert field in form.errors, (field, form.errors)
    return " ".join(form.errors[field])


# --- the page ---------------------------------------------------------------------------------


def test_page_shows_firing_alerts_first_then_resolved_rules_channels_and_the_log(
    viewer: Client,
) -> None:
    channel, _ = webhook()
    rule = services.alert_rule_save(
        RuleDefinition(name="failures", kind="run_failed", channels=[channel.pk]), actor=system()
    )
    run = ledger.make_run(RunState.FAILURE)
    Alert.objects.create(rule=rule, key=f"run:{run.task_id}", run=run, summary="flaky failed")
    Alert.objects.create(
        rule=rule,
        key="run:old",
        summary="an old failure",
        fired_at=timezone.now() - timedelta(hours=3),
        resolved_at=timezone.now() - timedelta(hours=1),
    )
    message = AlertMessage.objects.create(rule=rule, event=AlertEvent.FIRED, subject="fired")
    AlertDelivery.objects.create(
        message=message,
        channel=channel,
        channel_name=channel.name,
        state=DeliveryState.FAILED,
        attempts=5,
        response_status=500,
        last_error="HTTP 500 from the receiver\nsecond line",
    )

    response = viewer.get(PAGE)
    html = response.content.decode()

    assert response.status_code == 200
    assert html.index("flaky failed") < html.index("an old failure")  # firing first
    assert reverse("tasks_app:run", args=[run.task_id]) in html
    assert "ago</time>" in html
    assert 'title="' in html
    assert "A run fails or is lost" in html
    assert "any job" in html
    assert "https://hooks.slack.com/…" in html
    assert "very-secret-path" not in html
    assert "HTTP 500 from the receiver" in html
    assert "second line" not in html
    assert ">500<" in html
    assert ">5<" in html
    assert 'href="/alerts/"' in html  # the nav link
    # A viewer sees, but is offered no change.
    assert "New rule" not in html
    assert "Rotate secret" not in html
    assert "Send test message" not in html


def test_the_log_is_a_partial_for_htmx_that_polls_while_a_delivery_is_pending(
    viewer: Client,
) -> None:
    channel, _ = webhook()
    message = AlertMessage.objects.create(event=AlertEvent.TEST, subject="test")
    AlertDelivery.objects.create(message=message, channel=channel, channel_name=channel.name)

    response = viewer.get(PAGE, headers={"HX-Request": "true", "HX-Target": "deliveries"})
    html = response.content.decode()

    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="deliveries"')
    assert 'hx-trigger="every 3s" data-poll' in html
    assert "<h1>" not in html


def test_hostile_text_is_escaped_everywhere(manager: Client) -> None:
    channel, _ = services.alert_channel_save(
        ChannelDefinition(name=HOSTILE, kind="email", email_to="ops@example.com"), actor=system()
    )
    rule = services.alert_rule_save(
        RuleDefinition(name=HOSTILE + " rule", kind="run_failed", channels=[channel.pk]),
        actor=system(),
    )
    Alert.objects.create(rule=rule, key="run:x", summary=HOSTILE, schedule_name=HOSTILE)
    message = AlertMessage.objects.create(rule=rule, event=AlertEvent.FIRED, subject=HOSTILE)
    AlertDelivery.objects.create(
        message=message, channel=channel, channel_name=HOSTILE, last_error=HOSTILE
    )

    pages = [
        PAGE,
        reverse("tasks_app:alert_rule_edit", args=[rule.pk]),
        reverse("tasks_app:alert_channel_edit", args=[channel.pk]),
        reverse("tasks_app:alert_rule_delete", args=[rule.pk]),
    ]
    for url in pages:
        html = manager.get(url).content.decode()
        assert HOSTILE not in html, url
        assert ESCAPED in html, url


# --- rules ------------------------------------------------------------------------------------


def test_create_edit_and_delete_a_rule(manager: Client) -> None:
    channel, _ = webhook()

    response = manager.post(
        reverse("tasks_app:alert_rule_new"), rule_post(channels=[str(channel.pk)])
    )

    assert response.status_code == 302
    rule = AlertRule.objects.get(name="slow starts")
    assert rule.threshold_seconds == 5400
    assert rule.job_name == "demo.progress"
    assert list(rule.channels.all()) == [channel]
    assert rule.created_by is not None
    assert rule.created_by.username == "manager"
    html = manager.get(PAGE).content.decode()
    assert "1 hour 30 minutes" in html
    assert "job demo.progress" in html

    edit_url = reverse("tasks_app:alert_rule_edit", args=[rule.pk])
    form_html = manager.get(edit_url).content.decode()
    assert 'value="1h30m"' in form_html  # the deadline as typed
    response = manager.post(edit_url, rule_post(deadline="2h", throttle_minutes="0"))
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.threshold_seconds, rule.throttle_minutes) == (7200, 0)
    assert not rule.channels.exists()

    delete_url = reverse("tasks_app:alert_rule_delete", args=[rule.pk])
    assert "Delete alert rule" in manager.get(delete_url).content.decode()
    assert manager.post(delete_url).status_code == 302
    assert not AlertRule.objects.exists()

    actions = list(
        AuditEntry.objects.filter(target_type="alert_rule")
        .order_by("pk")
        .values_list("action", flat=True)
    )
    assert actions == ["alert_rule.create", "alert_rule.edit", "alert_rule.delete"]
    edit = AuditEntry.objects.get(action="alert_rule.edit")
    assert edit.actor_label == "manager"
    assert edit.details["before"]["threshold_seconds"] == 5400
    assert edit.details["after"]["threshold_seconds"] == 7200
    assert edit.details["job"] == "demo.progress"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"deadline": "soon"}, "deadline", "is not a duration"),
        ({"deadline": ""}, "deadline", "Give the deadline"),
        ({"deadline": "31d"}, "deadline", "at most 30 days"),
        ({"deadline": "0s"}, "deadline", "at least 1 second"),
        ({"kind": "schedule_missed", "schedule_name": "no such"}, "schedule_name", "valid choice"),
        ({"job_name": "no.such.job"}, "job_name", "valid choice"),
        ({"throttle_minutes": "1441"}, "throttle_minutes", "1440"),
        ({"threshold_count": "0"}, "threshold_count", "1"),
        ({"name": "  "}, "name", "required"),
        ({"channels": ["999999"]}, "channels", "valid choice"),
    ],
)
def test_bad_rule_input_is_refused_inline_and_nothing_is_stored(
    manager: Client, changes: dict[str, Any], field: str, words: str
) -> None:
    response = manager.post(reverse("tasks_app:alert_rule_new"), rule_post(**changes))

    assert response.status_code == 400
    assert words in error_of(response, field)
    assert 'role="alert"' in response.content.decode()
    assert not AlertRule.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="alert_rule").exists()


def test_a_rule_name_is_unique(manager: Client) -> None:
    services.alert_rule_save(RuleDefinition(name="slow starts", kind="run_failed"), actor=system())
    response = manager.post(reverse("tasks_app:alert_rule_new"), rule_post())
    assert response.status_code == 400
    assert "already has this name" in error_of(response, "name")
    assert AlertRule.objects.count() == 1


def test_a_schedule_rule_names_an_existing_schedule(manager: Client) -> None:
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(name="nightly report", task="demo.progress", interval=every)

    response = manager.post(
        reverse("tasks_app:alert_rule_new"),
        rule_post(kind="schedule_missed", schedule_name="nightly report", deadline="10m"),
    )

    assert response.status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.schedule_name, rule.job_name, rule.threshold_seconds) == (
        "nightly report",
        "",  # a missed fire time belongs to no job
        600,
    )


# --- channels ---------------------------------------------------------------------------------


def test_a_new_webhook_shows_its_secret_once_and_only_its_host_ever(manager: Client) -> None:
    response = manager.post(reverse("tasks_app:alert_channel_new"), channel_post())
    html = response.content.decode()

    channel = AlertChannel.objects.get()
    assert response.status_code == 201
    assert len(channel.secret) >= 40
    assert f'value="{channel.secret}"' in html
    assert "it will not be shown again" in html
    assert "no-store" in response["Cache-Control"]
    assert "very-secret-path" not in html

    for url in (PAGE, reverse("tasks_app:alert_channel_edit", args=[channel.pk])):
        later = manager.get(url).content.decode()
        assert channel.secret not in later, url
        assert "very-secret-path" not in later, url
        assert "https://hooks.slack.com/…" in later, url

    entry = AuditEntry.objects.get(action="alert_channel.create")
    text = json.dumps(entry.details)
    assert channel.secret not in text
    assert "very-secret-path" not in text
    assert entry.details["after"]["url"] == "https://hooks.slack.com/…"
    assert entry.details["after"]["secret_set"] is True


def test_editing_a_webhook_keeps_its_url_and_secret_unless_given(manager: Client) -> None:
    channel, secret = webhook()
    edit_url = reverse("tasks_app:alert_channel_edit", args=[channel.pk])

    response = manager.post(edit_url, channel_post(url="", name="renamed", timeout_seconds="9"))

    assert response.status_code == 302
    channel.refresh_from_db()
    assert (channel.name, channel.url, channel.secret) == ("renamed", SLACK_URL, secret)
    assert channel.timeout_seconds == 9

    new_url = "https://example.org/hooks/other"
    response = manager.post(
        edit_url, channel_post(url=new_url, name="renamed", timeout_seconds="9")
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.url == new_url
    assert channel.secret == secret
    edit = AuditEntry.objects.filter(action="alert_channel.edit").latest("pk")
    assert edit.details["after"] == {"url": "https://example.org/…"}


def test_an_email_channel(manager: Client) -> None:
    response = manager.post(
        reverse("tasks_app:alert_channel_new"),
        channel_post(
            name="oncall", kind="email", url="", email_to="a@example.com\r\nb@example.com\n"
        ),
    )

    assert response.status_code == 302  # no secret to show
    channel = AlertChannel.objects.get()
    assert channel.email_to == "a@example.com\nb@example.com"
    assert channel.secret == ""
    assert channel.url == ""
    assert "a@example.com, b@example.com" in manager.get(PAGE).content.decode()


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"kind": "email", "email_to": "ops@example.com\nnot-an-address"}, "email_to", "line 2"),
        ({"kind": "email", "email_to": "  \n "}, "email_to", "at least one address"),
        ({"url": "ftp://files.example.com/hook"}, "url", "http:// or https://"),
        ({"url": "javascript:alert(1)"}, "url", "http:// or https://"),
        ({"url": ""}, "url", "Give the webhook's URL"),
        ({"timeout_seconds": "31"}, "timeout_seconds", "30"),
        ({"max_attempts": "11"}, "max_attempts", "10"),
        ({"secret": "short"}, "secret", "16 to 200"),
        ({"kind": "sms"}, "kind", "valid choice"),
    ],
)
def test_bad_channel_input_is_refused_inline_and_nothing_is_stored(
    manager: Client, changes: dict[str, Any], field: str, words: str
) -> None:
    response = manager.post(reverse("tasks_app:alert_channel_new"), channel_post(**changes))

    assert response.status_code == 400
    assert words in error_of(response, field)
    assert not AlertChannel.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="alert_channel").exists()


def test_too_many_recipients_are_refused(manager: Client, settings: Any) -> None:
    settings.TASKDECK_EMAIL_MAX_RECIPIENTS = 2
    addresses = "\n".join(f"u{n}@example.com" for n in range(3))
    response = manager.post(
        reverse("tasks_app:alert_channel_new"),
        channel_post(kind="email", url="", email_to=addresses),
    )
    assert response.status_code == 400
    assert "at most 2 addresses" in error_of(response, "email_to")


def test_rotate_secret_shows_the_new_one_once(manager: Client) -> None:
    channel, old = webhook()

    response = manager.post(reverse("tasks_app:alert_channel_rotate_secret", args=[channel.pk]))

    channel.refresh_from_db()
    assert response.status_code == 200
    assert channel.secret != old
    assert f'value="{channel.secret}"' in response.content.decode()
    assert channel.secret not in manager.get(PAGE).content.decode()
    entry = AuditEntry.objects.get(action="alert_channel.rotate_secret")
    assert channel.secret not in json.dumps(entry.details)
    assert old not in json.dumps(entry.details)


def test_send_test_message_queues_one_delivery_shown_in_the_log(
    manager: Client, broker: str
) -> None:
    channel, _ = webhook()

    response = manager.post(reverse("tasks_app:alert_channel_test", args=[channel.pk]))

    assert response.status_code == 302
    delivery = AlertDelivery.objects.select_related("message").get()
    assert (delivery.channel, delivery.message.event) == (channel, AlertEvent.TEST)
    html = manager.get(PAGE).content.decode()
    assert "Queued a test message to ops hook" in html
    assert ">test<" in html
    assert "Pending" in html
    assert AuditEntry.objects.get(action="alert_channel.test").details["delivery"] == delivery.pk


def test_deleting_a_channel_keeps_its_deliveries_in_the_log(manager: Client) -> None:
    channel, _ = webhook()
    message = AlertMessage.objects.create(event=AlertEvent.TEST, subject="test")
    AlertDelivery.objects.create(message=message, channel=channel, channel_name=channel.name)

    response = manager.post(reverse("tasks_app:alert_channel_delete", args=[channel.pk]))

    assert response.status_code == 302
    assert not AlertChannel.objects.exists()
    delivery = AlertDelivery.objects.get()
    assert delivery.channel is None
    assert delivery.channel_name == "ops hook"
    assert AuditEntry.objects.filter(action="alert_channel.delete").exists()


# --- permissions and CSRF ---------------------------------------------------------------------


def test_without_the_permission_every_change_is_refused(viewer: Client) -> None:
    channel, secret = webhook()
    rule = services.alert_rule_save(RuleDefinition(name="r", kind="run_failed"), actor=system())
    before = AuditEntry.objects.count()

    refused = [
        viewer.get(reverse("tasks_app:alert_rule_new")),
        viewer.post(reverse("tasks_app:alert_rule_new"), rule_post()),
        viewer.post(reverse("tasks_app:alert_rule_edit", args=[rule.pk]), rule_post()),
        viewer.post(reverse("tasks_app:alert_rule_delete", args=[rule.pk])),
        viewer.get(reverse("tasks_app:alert_channel_new")),
        viewer.post(reverse("tasks_app:alert_channel_new"), channel_post(name="x")),
        viewer.post(reverse("tasks_app:alert_channel_edit", args=[channel.pk]), channel_post()),
        viewer.post(reverse("tasks_app:alert_channel_delete", args=[channel.pk])),
        viewer.post(reverse("tasks_app:alert_channel_rotate_secret", args=[channel.pk])),
        viewer.post(reverse("tasks_app:alert_channel_test", args=[channel.pk])),
    ]

    assert [r.status_code for r in refused] == [403] * len(refused)
    channel.refresh_from_db()
    assert channel.secret == secret
    assert AlertRule.objects.count() == 1
    assert AlertChannel.objects.count() == 1
    assert not AlertDelivery.objects.exists()
    assert AuditEntry.objects.count() == before


def test_posts_need_the_csrf_token(manager_user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager_user)
    channel, secret = webhook()

    attempts = [
        client.post(reverse("tasks_app:alert_rule_new"), rule_post()),
        client.post(reverse("tasks_app:alert_channel_new"), channel_post(name="other")),
        client.post(reverse("tasks_app:alert_channel_rotate_secret", args=[channel.pk])),
        client.post(reverse("tasks_app:alert_channel_delete", args=[channel.pk])),
    ]

    assert [r.status_code for r in attempts] == [403] * len(attempts)
    channel.refresh_from_db()
    assert channel.secret == secret
    assert not AlertRule.objects.exists()
    assert AlertChannel.objects.count() == 1
    # With the page's token, the same POST goes through.
    form_page = client.get(reverse("tasks_app:alert_rule_new"))
    token = form_page.context["csrf_token"]
    created = client.post(reverse("tasks_app:alert_rule_new"), rule_post(csrfmiddlewaretoken=token))
    assert created.status_code == 302


# --- restricted jobs (review 13, item 3) -------------------------------------------------------

RESTRICTED = "taskdeck.cleanup"  # asks for tasks_app.run_cleanup to read its runs
SECRET_ERROR = "cleanup-secret-5521"


def restricted_alerts() -> tuple[AlertRule, Alert, Alert]:
    """A firing and a resolved alert about runs of a restricted job, each quoting its error,
    and the message that announced the firing one (its subject quotes the error too)."""
    rule = services.alert_rule_save(
        RuleDefinition(name="failures", kind="run_failed"), actor=system()
    )
    run = ledger.make_run(RunState.FAILURE, job_name=RESTRICTED)
    firing = Alert.objects.create(
        rule=rule,
        key=f"run:{run.task_id}",
        run=run,
        job_name=RESTRICTED,
        summary=f"{RESTRICTED} failed: {SECRET_ERROR}",
    )
    resolved = Alert.objects.create(
        rule=rule,
        key="run:older",
        job_name=RESTRICTED,
        summary=f"{RESTRICTED} failed: {SECRET_ERROR} before",
        resolved_at=timezone.now(),
    )
    message = AlertMessage.objects.create(
        rule=rule, event=AlertEvent.FIRED, subject=f"[Taskdeck] failures: {firing.summary}"
    )
    Alert.objects.filter(pk=firing.pk).update(fired_message=message)
    AlertDelivery.objects.create(message=message, channel_name="ops", state=DeliveryState.SENT)
    return rule, firing, resolved


def test_alerts_about_a_job_the_viewer_may_not_read_are_listed_without_their_summary(
    viewer: Client, client: Client
) -> None:
    _, firing, _ = restricted_alerts()
    open_rule = services.alert_rule_save(
        RuleDefinition(name="open", kind="run_failed"), actor=system()
    )
    Alert.objects.create(
        rule=open_rule, key="run:open", job_name="demo.flaky", summary="open-err-7"
    )

    html = viewer.get(PAGE).content.decode()

    assert firing.run is not None
    assert SECRET_ERROR not in html  # not in the firing, resolved or delivery rows
    assert html.count("Hidden: needs this job&#x27;s permission") == 3
    assert reverse("tasks_app:run", args=[firing.run.task_id]) in html  # listed, as runs are
    assert "open-err-7" in html  # other jobs' alerts keep their summary
    log = viewer.get(PAGE, headers={"HX-Request": "true", "HX-Target": "deliveries"})
    assert SECRET_ERROR not in log.content.decode()

    keeper = staff("keeper", manage=False)
    keeper.user_permissions.add(Permission.objects.get(codename="run_cleanup"))
    client.force_login(User.objects.get(pk=keeper.pk))
    shown = client.get(PAGE).content.decode()
    assert shown.count(SECRET_ERROR) == 3
    assert "Hidden: needs" not in shown


# --- webhook targets (review 13, item 5) -------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/hook",
        "http://127.0.0.1:9000/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
    ],
)
def test_a_webhook_to_a_non_public_address_is_refused_inline(
    manager: Client, settings: Any, url: str
) -> None:
    settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE = False

    response = manager.post(reverse("tasks_app:alert_channel_new"), channel_post(url=url))

    assert response.status_code == 400
    assert "public" in error_of(response, "url")
    assert not AlertChannel.objects.exists()


def test_a_stored_webhook_cannot_be_pointed_at_a_private_address(
    manager: Client, settings: Any
) -> None:
    settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE = False
    channel, _ = webhook()
    edit_url = reverse("tasks_app:alert_channel_edit", args=[channel.pk])

    response = manager.post(edit_url, channel_post(url="http://192.168.1.20/hook"))

    assert response.status_code == 400
    assert "not a public address" in error_of(response, "url")
    channel.refresh_from_db()
    assert channel.url == SLACK_URL


def test_private_webhooks_are_allowed_when_the_setting_says_so(
    manager: Client, settings: Any
) -> None:
    settings.TASKDECK_ALERT_WEBHOOK_ALLOW_PRIVATE = True

    response = manager.post(
        reverse("tasks_app:alert_channel_new"), channel_post(url="http://127.0.0.1:9000/hook")
    )

    assert response.status_code == 201
    assert AlertChannel.objects.get().url == "http://127.0.0.1:9000/hook"


# --- is anything evaluating the rules? (review 13, item 6) ------------------------------------

STALE_BANNER = 'id="evaluation-stale"'


@pytest.fixture
def beat_lock(broker: str, settings: Any) -> Iterator[str]:
    """A lock key of this test's own, in the test broker's Redis (absent: no beat leads)."""
    key = f"taskdeck:beat-leader:test-{uuid.uuid4().hex}"
    settings.TASKDECK_BEAT_LOCK_KEY = key
    yield key
    redis.Redis.from_url(presence.redis_url(broker)).delete(key)


def evaluated(ago: timedelta) -> None:
    """Where evaluate_all leaves the end of its last pass."""
    RollupMark.objects.update_or_create(
        name="alerts_evaluated", defaults={"upto": timezone.now() - ago}
    )


def test_a_banner_says_when_alerts_were_never_evaluated_and_beat_does_not_lead(
    viewer: Client, beat_lock: str
) -> None:
    html = viewer.get(PAGE).content.decode()

    assert STALE_BANNER in html
    assert "No evaluation has run yet" in html
    assert "deadlines, missed schedules and recoveries are not being checked" in html
    assert "No beat holds the leader lock: beat may be down" in html


def test_a_banner_says_when_the_last_evaluation_is_old_though_beat_leads(
    viewer: Client, beat_lock: str, broker: str
) -> None:
    evaluated(timedelta(minutes=5))
    redis.Redis.from_url(presence.redis_url(broker)).set(beat_lock, "a-beat", px=60_000)

    html = viewer.get(PAGE).content.decode()

    assert STALE_BANNER in html
    assert re.search(r"The last evaluation finished\s*<time[^>]*>5 min ago</time>", html)
    assert "Beat is running" in html
    assert "No beat holds" not in html


def test_the_banner_says_when_redis_cannot_tell_whether_beat_runs(
    viewer: Client, beat_lock: str, broker: str
) -> None:
    evaluated(timedelta(minutes=2))
    use_broker("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        response = viewer.get(PAGE)
    finally:
        use_broker(broker)

    assert response.status_code == 200
    html = response.content.decode()
    assert STALE_BANNER in html
    assert "Could not ask Redis whether beat runs" in html


def test_no_banner_once_an_evaluation_pass_ran(viewer: Client, beat_lock: str) -> None:
    assert STALE_BANNER in viewer.get(PAGE).content.decode()

    evaluate_all()  # what beat has the worker run every 15 seconds

    html = viewer.get(PAGE).content.decode()
    assert STALE_BANNER not in html
    assert "not being evaluated" not in html


# --- the delivery log's polling ---------------------------------------------------------------


def pending_delivery(due_in: timedelta) -> AlertDelivery:
    message = AlertMessage.objects.create(event=AlertEvent.TEST, subject="test")
    return AlertDelivery.objects.create(
        message=message,
        channel_name="ops",
        attempts=3,
        next_attempt_at=timezone.now() + due_in,
    )


def log_of(client: Client) -> str:
    response = client.get(PAGE, headers={"HX-Request": "true", "HX-Target": "deliveries"})
    assert response.status_code == 200
    return response.content.decode()


def test_the_log_does_not_poll_through_a_long_backoff_but_wakes_when_it_nears(
    viewer: Client,
) -> None:
    pending_delivery(timedelta(minutes=30))

    html = log_of(viewer)

    assert "every 3s" not in html
    delay = re.search(r'hx-trigger="load delay:(\d+)s"', html)
    assert delay is not None, html
    assert 28 * 60 <= int(delay.group(1)) <= 30 * 60  # once, when it is a minute from due


def test_the_log_polls_while_a_delivery_is_due_within_the_minute(viewer: Client) -> None:
    pending_delivery(timedelta(minutes=30))
    pending_delivery(timedelta(seconds=40))

    assert 'hx-trigger="every 3s" data-poll' in log_of(viewer)


def test_the_log_stands_still_when_nothing_is_pending(viewer: Client) -> None:
    delivery = pending_delivery(timedelta(seconds=0))
    AlertDelivery.objects.filter(pk=delivery.pk).update(state=DeliveryState.SENT)

    html = log_of(viewer)

    assert "hx-get" not in html
    assert "hx-trigger" not in html
