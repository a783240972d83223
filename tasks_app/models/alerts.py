"""Alerting: rules say what deserves a message, channels say where it goes, alerts record what
fired, messages group alerts of one rule, deliveries record each attempt to send a message to a
channel.

Invariants kept by the database, not by check-then-insert:

* one alert per rule and key (a key names one run, one failing streak or one missed fire time),
  so an evaluation that runs twice, or on two workers at once, cannot fire twice;
* one delivery per message and channel, so a message is sent to a channel at most once (a
  delivery is retried, never duplicated).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AlertRuleKind(models.TextChoices):
    RUN_FAILED = "run_failed", "A run fails or is lost"
    SCHEDULE_FAILING = "schedule_failing", "A schedule's runs fail N times in a row"
    QUEUED_TOO_LONG = "queued_too_long", "A run is not started within the deadline"
    RUNNING_TOO_LONG = "running_too_long", "A run is still running after the deadline"
    SCHEDULE_MISSED = "schedule_missed", "A schedule does not fire when due"


# The kinds that need a deadline (threshold_seconds), and those about schedules.
DEADLINE_KINDS = frozenset(
    {AlertRuleKind.QUEUED_TOO_LONG, AlertRuleKind.RUNNING_TOO_LONG, AlertRuleKind.SCHEDULE_MISSED}
)
SCHEDULE_KINDS = frozenset({AlertRuleKind.SCHEDULE_FAILING, AlertRuleKind.SCHEDULE_MISSED})


class AlertChannelKind(models.TextChoices):
    EMAIL = "email", "Email"
    WEBHOOK = "webhook", "Webhook"


class WebhookFormat(models.TextChoices):
    TASKDECK = "taskdeck", "Taskdeck JSON"
    SLACK = "slack", "Slack-compatible"


class AlertChannel(models.Model):
    """Where alert messages go: an email list (Django's mail backend) or a webhook (a JSON POST
    whose body is signed with HMAC-SHA256 and this channel's secret)."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=AlertChannelKind.choices)
    enabled = models.BooleanField(default=True)
    # Email: the addresses, one per line.
    email_to = models.TextField(blank=True)
    # Webhook. The URL may itself be a credential (Slack's are): pages show only its host.
    url = models.URLField(max_length=2000, blank=True)
    # The HMAC key. Stored as is (it must be to sign); shown once when set, masked after.
    secret = models.CharField(max_length=200, blank=True)
    payload_format = models.CharField(
        max_length=16, choices=WebhookFormat.choices, default=WebhookFormat.TASKDECK
    )
    # One attempt never takes longer than this, so a receiver that hangs holds nothing for long.
    timeout_seconds = models.PositiveSmallIntegerField(default=5)
    # Attempts before a delivery is marked failed (retried with exponential backoff).
    max_attempts = models.PositiveSmallIntegerField(default=5)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class AlertRule(models.Model):
    """What deserves a message. `job_name` / `schedule_name` empty: any job / any schedule."""

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=32, choices=AlertRuleKind.choices)
    enabled = models.BooleanField(default=True)
    job_name = models.CharField(max_length=255, blank=True)
    schedule_name = models.CharField(max_length=200, blank=True)
    # SCHEDULE_FAILING: how many failures in a row.
    threshold_count = models.PositiveIntegerField(default=3)
    # The deadline of the DEADLINE_KINDS (for SCHEDULE_MISSED: the grace after the due time).
    threshold_seconds = models.PositiveIntegerField(null=True, blank=True)
    # At most one "fired" message per this many minutes; alerts in between are counted into the
    # next one. 0: every alert sends its own message.
    throttle_minutes = models.PositiveIntegerField(default=10)
    notify_resolved = models.BooleanField(default=True)
    channels = models.ManyToManyField(AlertChannel, blank=True, related_name="rules")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("name",)
        permissions = [("manage_alerts", "Can manage alert rules and channels")]

    def __str__(self) -> str:
        return self.name


class AlertEvent(models.TextChoices):
    FIRED = "fired", "Fired"
    RESOLVED = "resolved", "Resolved"
    TEST = "test", "Test message"


class AlertMessage(models.Model):
    """One notification about one or more alerts of one rule (a throttled rule's message counts
    the alerts it stands for). Its payload is the Taskdeck JSON body, built once, so every
    channel and every retry sends the same thing."""

    rule = models.ForeignKey(
        AlertRule, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )  # NULL: a channel's test message
    event = models.CharField(max_length=16, choices=AlertEvent.choices)
    alert_count = models.PositiveIntegerField(default=1)
    subject = models.CharField(max_length=300)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [
            models.Index(fields=["rule", "event", "-created_at"], name="alertmsg_rule_event_idx")
        ]

    def __str__(self) -> str:
        return self.subject


class Alert(models.Model):
    """Something a rule found: a failed run, a run past its deadline, a failing streak, a missed
    fire time. Firing until resolved (the job's next run succeeds, the run starts or finishes,
    the schedule fires)."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="alerts")
    # "run:<task_id>", "streak:<schedule>:<task_id of the run that completed the streak>",
    # "missed:<schedule>:<due time, ISO 8601>": unique per rule (see the module docstring).
    key = models.CharField(max_length=600)
    run = models.ForeignKey(
        "tasks_app.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job_name = models.CharField(max_length=255, blank=True)
    schedule_name = models.CharField(max_length=200, blank=True)
    summary = models.CharField(max_length=500)
    details = models.JSONField(default=dict, blank=True)
    fired_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # The "fired" message that announced it; NULL while its rule's throttle holds it back.
    fired_message = models.ForeignKey(
        AlertMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_message = models.ForeignKey(
        AlertMessage, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("-fired_at", "-id")
        constraints = [
            models.UniqueConstraint(fields=["rule", "key"], name="alert_one_per_rule_and_key")
        ]
        indexes = [
            models.Index(fields=["resolved_at", "rule"], name="alert_open_idx"),
            models.Index(fields=["-fired_at", "-id"], name="alert_fired_idx"),
        ]

    def __str__(self) -> str:
        return self.summary

    @property
    def is_firing(self) -> bool:
        return self.resolved_at is None


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class AlertDelivery(models.Model):
    """One message to one channel: its attempts, and how the last one went."""

    message = models.ForeignKey(AlertMessage, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(
        AlertChannel, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    channel_name = models.CharField(max_length=100)  # kept when the channel is deleted
    state = models.CharField(
        max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A sender claims a delivery until this time (a conditional UPDATE), so two senders never
    # send it at once; a sender that dies releases it when the claim runs out.
    claimed_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "alert deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["message", "channel"], name="delivery_one_per_message_and_channel"
            )
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="delivery_due_idx"),
            models.Index(fields=["-created_at", "-id"], name="delivery_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.message_id} -> {self.channel_name}: {self.state}"
