"""Alert rules and channels in the admin, saved through the services as on the Alerts page: the
same rules (checked on the form, so refusals show on their fields), the permission
`tasks_app.manage_alerts`, and the audit trail. Alerts and deliveries are read-only here.

A channel's secret is never a form field nor shown: a new webhook's generated secret is shown
once, in the answer of the POST that created it (as "Rotate secret" does), and its URL shows
only its host; a new URL replaces it, a blank one keeps it."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from .. import services
from ..forms.alerts import rule_definition
from ..models import Alert, AlertChannel, AlertChannelKind, AlertDelivery, AlertRule
from ..selectors.alerts import HIDDEN_SUMMARY, channel_target, mask_url
from ..services import (
    Actor,
    ChannelDefinition,
    RuleDefinition,
    may_read_runs_of,
    unreadable_jobs,
)
from ..services.alerts import MANAGE
from .large_tables import ReadOnlyAdmin

# Set on a request while the alert admin searches the alerts the viewer may not read.
_NAMES_ONLY = "_taskdeck_alert_search_names_only"
# Where a save leaves the secret it set, for `response_add` (the request is the one carrier
# that lives exactly as long as the POST's answer).
_NEW_SECRET = "_taskdeck_new_channel_secret"  # noqa: S105 - an attribute name


def _actor(request: HttpRequest) -> Actor:
    return Actor(user=request.user)


class _ManagedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Changes need `tasks_app.manage_alerts` on top of the model's own admin permissions."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(super().has_add_permission(request)) and _actor(request).has_perm(MANAGE)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = bool(super().has_change_permission(request, obj))
        return allowed and _actor(request).has_perm(MANAGE)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = bool(super().has_delete_permission(request, obj))
        return allowed and _actor(request).has_perm(MANAGE)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except services.ServiceError as error:
            # Refused at save time (the form checks the same rules first, so only a race, such
            # as the same name saved meanwhile, gets here): nothing is stored.
            self.message_user(request, str(error), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        """The service saved the relations with the row (and audited them)."""

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


class _ServiceCheckedForm(forms.ModelForm):  # type: ignore[type-arg]
    """A form whose values, once the model's own validation passes, are checked by the
    services' rules; their errors are shown on the fields."""

    actor: ClassVar[Actor] = Actor()  # set per request by the admin's get_form

    def definition(self) -> Any:
        raise NotImplementedError

    def _check(self) -> None:
        raise NotImplementedError

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        if self.errors:
            return
        try:
            self._check()
        except services.FieldErrors as error:
            for name, problem in error.errors.items():
                self.add_error(name if name in self.fields else None, problem)
        except PermissionDenied as error:
            self.add_error(None, str(error))

    def validate_unique(self) -> None:
        """The services check names (and say so on the field)."""


class AlertRuleForm(_ServiceCheckedForm):
    deadline = forms.CharField(
        required=False,
        max_length=40,
        help_text="For the deadline kinds: 90s, 15m, 2h, 1h30m, 1d, or a number of seconds.",
    )

    class Meta:
        model = AlertRule
        fields = (
            "name", "kind", "enabled", "job_name", "schedule_name", "deadline",
            "threshold_count", "throttle_minutes", "notify_resolved", "channels",
        )  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None and not self.is_bound:
            self.initial["deadline"] = services.duration_text(self.instance.threshold_seconds)

    def definition(self) -> RuleDefinition:
        return rule_definition(self.cleaned_data)

    def _check(self) -> None:
        rule = self.instance if self.instance.pk is not None else None
        services.alert_rule_check(self.definition(), actor=self.actor, rule=rule)


class AlertChannelForm(_ServiceCheckedForm):
    new_url = forms.CharField(
        label="URL",
        required=False,
        max_length=2000,
        help_text="Webhooks: http:// or https://. On a stored channel, blank keeps its URL.",
    )

    class Meta:
        model = AlertChannel
        fields = (
            "name", "kind", "enabled", "email_to", "payload_format", "timeout_seconds",
            "max_attempts",
        )  # fmt: skip

    def definition(self) -> ChannelDefinition:
        data = self.cleaned_data
        return ChannelDefinition(
            name=data["name"],
            kind=data["kind"],
            enabled=bool(data.get("enabled")),
            email_to=data.get("email_to") or "",
            url=(data.get("new_url") or "").strip() or None,
            payload_format=data.get("payload_format") or "taskdeck",
            timeout_seconds=data["timeout_seconds"],
            max_attempts=data["max_attempts"],
        )

    def _check(self) -> None:
        channel = self._stored()
        try:
            services.alert_channel_check(self.definition(), actor=self.actor, channel=channel)
        except services.FieldErrors as error:
            raise services.FieldErrors(
                {("new_url" if k == "url" else k): v for k, v in error.errors.items()}
            ) from None

    def _stored(self) -> AlertChannel | None:
        # The row as stored: the instance already holds the edited values.
        pk = self.instance.pk
        return AlertChannel.objects.filter(pk=pk).first() if pk is not None else None


@admin.register(AlertRule)
class AlertRuleAdmin(_ManagedAdmin):
    form = AlertRuleForm
    list_display = ("name", "kind", "job_name", "schedule_name", "enabled", "throttle_minutes")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "job_name", "schedule_name")
    filter_horizontal = ("channels",)

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = type("AlertRuleForm", (AlertRuleForm,), {"actor": _actor(request)})
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        stored = AlertRule.objects.filter(pk=obj.pk).first() if change else None
        saved = services.alert_rule_save(form.definition(), actor=_actor(request), rule=stored)
        obj.pk = saved.pk

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.alert_rule_delete(obj, actor=_actor(request))


@admin.register(AlertChannel)
class AlertChannelAdmin(_ManagedAdmin):
    form = AlertChannelForm
    list_display = ("name", "kind", "target", "enabled", "timeout_seconds", "max_attempts")
    list_filter = ("kind", "enabled")
    search_fields = ("name",)
    readonly_fields = ("target", "secret_status")
    actions = ("rotate_secret", "send_test", "delete_selected")

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = ["name", "kind", "enabled", "email_to", "new_url"]
        if obj is not None:
            fields.insert(4, "target")
        fields += ["payload_format", "timeout_seconds", "max_attempts"]
        if obj is not None:
            fields.append("secret_status")
        return fields

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        kwargs["form"] = type("AlertChannelForm", (AlertChannelForm,), {"actor": _actor(request)})
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description="Sends to")
    def target(self, channel: AlertChannel) -> str:
        return channel_target(channel)

    @admin.display(description="Secret")
    def secret_status(self, channel: AlertChannel) -> str:
        if channel.kind != AlertChannelKind.WEBHOOK:
            return "— (email is not signed)"
        return (
            "set (hidden; use the “Rotate secret” action for a new one)" if channel.secret else "—"
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        stored = AlertChannel.objects.filter(pk=obj.pk).first() if change else None
        saved, secret = services.alert_channel_save(
            form.definition(), actor=_actor(request), channel=stored
        )
        obj.pk = saved.pk
        if secret:
            setattr(request, _NEW_SECRET, (saved, secret))

    def response_add(
        self, request: HttpRequest, obj: Any, post_url_continue: str | None = None
    ) -> HttpResponse:
        shown = self._secret_page(request, "Created channel")
        return shown or super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: Any) -> HttpResponse:
        shown = self._secret_page(request, "Saved channel")
        return shown or super().response_change(request, obj)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        services.alert_channel_delete(obj, actor=_actor(request))

    @admin.action(
        description="Rotate the secret of the selected webhook channel", permissions=["change"]
    )
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        channels = list(queryset[:2])
        if len(channels) != 1:
            self.message_user(
                request, "Select one channel: its secret is shown once.", messages.ERROR
            )
            return None
        try:
            channel, secret = services.alert_channel_rotate_secret(
                channels[0], actor=_actor(request)
            )
        except services.ServiceError as error:
            self.message_user(request, str(error), messages.ERROR)
            return None
        setattr(request, _NEW_SECRET, (channel, secret))
        return self._secret_page(request, "New secret for")

    @admin.action(
        description="Send a test message to the selected channels", permissions=["change"]
    )
    def send_test(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        actor = _actor(request)
        for channel in queryset.order_by("name"):
            try:
                services.alert_channel_test(channel, actor=actor)
            except services.ServiceError as error:
                self.message_user(request, f"“{channel.name}”: {error}", messages.ERROR)
            else:
                self.message_user(request, f"Queued a test message to “{channel.name}”.")

    def _secret_page(self, request: HttpRequest, title: str) -> HttpResponse | None:
        found = getattr(request, _NEW_SECRET, None)
        if found is None:
            return None
        channel, secret = found
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{title} “{channel.name}”",
            "channel": channel,
            "secret": secret,
            "target": mask_url(channel.url),
        }
        response = TemplateResponse(request, "tasks_app/alerts_secret_admin.html", context)
        response["Cache-Control"] = "no-store"
        return response


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    """As on the Alerts page, an alert about a job whose runs the viewer may not read (its
    summary may quote a run's error) is listed without its summary, a search does not look in
    its summary, and it opens only for those with the job's permission."""

    list_filter = ("rule",)
    search_fields = ("summary", "job_name", "schedule_name")
    list_select_related = ("rule",)
    exclude = ("details",)

    def get_list_display(self, request: HttpRequest) -> Any:
        hidden = frozenset(unreadable_jobs(_actor(request)))

        @admin.display(description="Summary")
        def shown_summary(alert: Alert) -> str:
            return HIDDEN_SUMMARY if alert.job_name in hidden else alert.summary

        return ("fired_at", "rule", shown_summary, "job_name", "schedule_name", "resolved_at")

    def get_search_fields(self, request: HttpRequest) -> Any:
        if getattr(request, _NAMES_ONLY, False):
            return ("job_name", "schedule_name")
        return super().get_search_fields(request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        """The readable alerts searched in every field; the others by job and schedule name
        only (else the rows a search returns would confirm a guessed error text)."""
        hidden = unreadable_jobs(_actor(request))
        if not hidden or not search_term:
            return super().get_search_results(request, queryset, search_term)
        readable, duplicates = super().get_search_results(
            request, queryset.exclude(job_name__in=hidden), search_term
        )
        setattr(request, _NAMES_ONLY, True)
        try:
            unreadable, more = super().get_search_results(
                request, queryset.filter(job_name__in=hidden), search_term
            )
        finally:
            delattr(request, _NAMES_ONLY)
        return readable | unreadable, duplicates or more

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_view_permission(request, obj)
        return allowed and (obj is None or may_read_runs_of(_actor(request), obj.job_name))


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at", "channel_name", "state", "attempts", "response_status", "next_attempt_at",
    )  # fmt: skip
    list_filter = ("state",)
    search_fields = ("channel_name",)
