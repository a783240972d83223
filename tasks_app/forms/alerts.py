"""The Alerts page's editors: a rule (`AlertRuleForm`) and a channel (`AlertChannelForm`). They
turn what was typed into the services' definitions; the services decide what may be stored
(`alert_rule_save`, `alert_channel_save`), and their errors land back on these fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django_celery_beat.models import PeriodicTask

from ..jobs.registry import all_jobs
from ..models import AlertChannel, AlertChannelKind, AlertRule, AlertRuleKind, WebhookFormat
from ..services import ChannelDefinition, FieldErrors, RuleDefinition, duration_text
from ..services.alerts import (
    ATTEMPTS_RANGE,
    COUNT_RANGE,
    NAME_MAX,
    THROTTLE_RANGE,
    TIMEOUT_RANGE,
    URL_MAX,
)
from ..services.durations import EXAMPLES


def _number(bounds: tuple[int, int], **kwargs: Any) -> forms.IntegerField:
    low, high = bounds
    widget = forms.NumberInput(attrs={"min": low, "max": high})
    return forms.IntegerField(min_value=low, max_value=high, widget=widget, **kwargs)


class AlertRuleForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX)
    kind = forms.ChoiceField(label="Alert when", choices=AlertRuleKind.choices)
    job_name = forms.ChoiceField(
        label="Job", required=False, help_text="Leave at “any job” to watch every job."
    )
    schedule_name = forms.ChoiceField(
        label="Schedule",
        required=False,
        help_text="For the schedule kinds; leave at “any schedule” to watch them all.",
    )
    deadline = forms.CharField(
        required=False,
        max_length=40,
        help_text=(
            f"For the deadline kinds (not started, still running, missed): {EXAMPLES}. "
            "For a missed schedule, the grace after its due time."
        ),
        widget=forms.TextInput(attrs={"placeholder": "15m", "autocomplete": "off"}),
    )
    threshold_count = _number(
        COUNT_RANGE, label="Failures in a row", initial=3, help_text="For a failing schedule."
    )
    throttle_minutes = _number(
        THROTTLE_RANGE,
        label="At most one message every (minutes)",
        initial=10,
        help_text="Alerts in between are counted into the next message; 0 sends each at once.",
    )
    notify_resolved = forms.BooleanField(
        required=False, initial=True, label="Send a message when resolved"
    )
    channels = forms.ModelMultipleChoiceField(
        queryset=AlertChannel.objects.order_by("name"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Where its messages go. Without a channel, alerts show on this page only.",
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        jobs = sorted((spec for spec in all_jobs() if spec.ledger), key=lambda s: s.name)
        job_field = self.fields["job_name"]
        assert isinstance(job_field, forms.ChoiceField)
        job_field.choices = [("", "any job")] + [(s.name, f"{s.title} ({s.name})") for s in jobs]
        schedule_field = self.fields["schedule_name"]
        assert isinstance(schedule_field, forms.ChoiceField)
        names = PeriodicTask.objects.order_by("name").values_list("name", flat=True)
        schedule_field.choices = [("", "any schedule")] + [(n, n) for n in names]

    @classmethod
    def initial_for(cls, rule: AlertRule) -> dict[str, Any]:
        return {
            "name": rule.name,
            "kind": rule.kind,
            "job_name": rule.job_name,
            "schedule_name": rule.schedule_name,
            "deadline": duration_text(rule.threshold_seconds),
            "threshold_count": rule.threshold_count,
            "throttle_minutes": rule.throttle_minutes,
            "notify_resolved": rule.notify_resolved,
            "channels": list(rule.channels.all()),
            "enabled": rule.enabled,
        }

    def to_definition(self) -> RuleDefinition:
        return rule_definition(self.cleaned_data)


class AlertChannelForm(forms.Form):
    name = forms.CharField(max_length=NAME_MAX)
    kind = forms.ChoiceField(choices=AlertChannelKind.choices, initial=AlertChannelKind.WEBHOOK)
    email_to = forms.CharField(
        label="Email addresses",
        required=False,
        help_text="For email: one address per line.",
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "spellcheck": "false"}),
    )
    url = forms.CharField(
        label="Webhook URL",
        required=False,
        max_length=URL_MAX,
        help_text="For webhooks: an http:// or https:// URL that takes a JSON POST.",
        widget=forms.TextInput(
            attrs={"placeholder": "https://hooks.example.com/…", "autocomplete": "off"}
        ),
    )
    payload_format = forms.ChoiceField(
        label="Payload", choices=WebhookFormat.choices, initial=WebhookFormat.TASKDECK
    )
    secret = forms.CharField(
        required=False,
        max_length=200,
        help_text="Signs each request (X-Taskdeck-Signature). Leave blank to have one made.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )
    timeout_seconds = _number(TIMEOUT_RANGE, label="Timeout (seconds)", initial=5)
    max_attempts = _number(
        ATTEMPTS_RANGE, label="Attempts", initial=5, help_text="Retried with growing waits."
    )
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args: Any, channel: AlertChannel | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if channel is not None and channel.url:
            # The stored URL may be a credential: never sent back to the browser.
            self.fields[
                "url"
            ].help_text = "Leave blank to keep the stored URL; type a new one to replace it."
            self.fields["url"].widget.attrs["placeholder"] = "(stored; leave blank to keep)"
        if channel is not None and channel.secret:
            self.fields[
                "secret"
            ].help_text = (
                "Leave blank to keep the stored secret (use “Rotate secret” for a new one)."
            )

    @classmethod
    def initial_for(cls, channel: AlertChannel) -> dict[str, Any]:
        return {
            "name": channel.name,
            "kind": channel.kind,
            "email_to": channel.email_to,
            "payload_format": channel.payload_format,
            "timeout_seconds": channel.timeout_seconds,
            "max_attempts": channel.max_attempts,
            "enabled": channel.enabled,
        }

    def to_definition(self) -> ChannelDefinition:
        data = self.cleaned_data
        return ChannelDefinition(
            name=data["name"],
            kind=data["kind"],
            enabled=bool(data.get("enabled")),
            email_to=data.get("email_to") or "",
            url=(data.get("url") or "").strip() or None,
            secret=(data.get("secret") or "").strip() or None,
            payload_format=data.get("payload_format") or WebhookFormat.TASKDECK,
            timeout_seconds=data["timeout_seconds"],
            max_attempts=data["max_attempts"],
        )


def rule_definition(data: Mapping[str, Any]) -> RuleDefinition:
    """A rule form's cleaned data as the service's definition (the page's form and the
    admin's share the field names)."""
    return RuleDefinition(
        name=data["name"],
        kind=data["kind"],
        enabled=bool(data.get("enabled")),
        job_name=data.get("job_name") or "",
        schedule_name=data.get("schedule_name") or "",
        threshold_count=data["threshold_count"],
        deadline=(data.get("deadline") or "").strip() or None,
        throttle_minutes=data["throttle_minutes"],
        notify_resolved=bool(data.get("notify_resolved")),
        channels=[channel.pk for channel in data.get("channels") or []],
    )


def add_service_errors(form: forms.Form, error: FieldErrors) -> None:
    """A service's refusal, each message on its field (or on the form as a whole)."""
    for name, problem in error.errors.items():
        form.add_error(name if name in form.fields else None, problem)


__all__ = ["AlertChannelForm", "AlertRuleForm", "add_service_errors", "rule_definition"]
