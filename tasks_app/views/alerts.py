"""The Alerts page: what fires, what resolved, the rules and channels with their editors, and the
delivery log; and the actions on them (delete, rotate a channel's secret, send a test message).

Any staff user sees the page; changes need `tasks_app.manage_alerts`, which the services check
(the page only hides the buttons). A channel's secret is shown once, in the answer of the POST
that set it (no redirect, nothing kept in the session), as an API token is."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from .. import selectors, services
from ..forms.alerts import AlertChannelForm, AlertRuleForm, add_service_errors
from ..models import AlertChannel, AlertChannelKind, AlertRule
from ..selectors.alerts import DeliveryRow, due_soon, next_due_in
from ..services.alerts import MANAGE
from ..types import HtmxHttpRequest
from .common import actor_for

NEED_PERMISSION = "You need the permission to manage alerts (tasks_app.manage_alerts)."


@require_safe
def alerts(request: HtmxHttpRequest) -> HttpResponse:
    """The whole page, or (htmx) the delivery log. The log polls while a delivery is due
    within a minute; during a longer backoff it refreshes once, when the next one nears. Alerts
    about a job the viewer may not read are listed without their summary."""
    hidden = services.unreadable_jobs(actor_for(request))
    if request.htmx and request.htmx.target == "deliveries":
        rows = selectors.recent_deliveries(unreadable_jobs=hidden)
        return render(request, "tasks_app/alerts.html#deliveries", _log_context(rows))
    page = selectors.alerts_page(unreadable_jobs=hidden)
    context = {"page": page, **_log_context(page.deliveries)}
    return render(request, "tasks_app/alerts.html", context)


def _log_context(rows: list[DeliveryRow]) -> dict[str, object]:
    polling = due_soon(rows)
    return {
        "deliveries": rows,
        "polling": polling,
        "wake_seconds": None if polling else next_due_in(rows),
    }


@require_http_methods(["GET", "HEAD", "POST"])
def rule_new(request: HtmxHttpRequest) -> HttpResponse:
    return _rule_editor(request, None)


@require_http_methods(["GET", "HEAD", "POST"])
def rule_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _rule_editor(request, _rule(pk))


def _rule_editor(request: HtmxHttpRequest, rule: AlertRule | None) -> HttpResponse:
    actor = actor_for(request)
    if not actor.has_perm(MANAGE):
        raise PermissionDenied(NEED_PERMISSION)
    status = 200
    if request.method == "POST":
        form = AlertRuleForm(request.POST)
        status = 400
        if form.is_valid():
            try:
                saved = services.alert_rule_save(form.to_definition(), actor=actor, rule=rule)
            except services.FieldErrors as error:
                add_service_errors(form, error)
            else:
                verb = "Created" if rule is None else "Saved"
                messages.success(request, f"{verb} alert rule {saved.name}.")
                return redirect("tasks_app:alerts")
    else:
        form = AlertRuleForm(initial=AlertRuleForm.initial_for(rule) if rule else None)
    context = {"form": form, "rule": rule}
    return render(request, "tasks_app/alerts_rule_form.html", context, status=status)


@never_cache  # the answer may hold a new secret: no cache may keep it
@require_http_methods(["GET", "HEAD", "POST"])
def channel_new(request: HtmxHttpRequest) -> HttpResponse:
    return _channel_editor(request, None)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def channel_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _channel_editor(request, _channel(pk))


def _channel_editor(request: HtmxHttpRequest, channel: AlertChannel | None) -> HttpResponse:
    actor = actor_for(request)
    if not actor.has_perm(MANAGE):
        raise PermissionDenied(NEED_PERMISSION)
    status = 200
    if request.method == "POST":
        form = AlertChannelForm(request.POST, channel=channel)
        status = 400
        if form.is_valid():
            try:
                saved, secret = services.alert_channel_save(
                    form.to_definition(), actor=actor, channel=channel
                )
            except services.FieldErrors as error:
                add_service_errors(form, error)
            else:
                verb = "Created" if channel is None else "Saved"
                if secret:
                    return _secret_page(request, saved, secret, f"{verb} channel", 201)
                messages.success(request, f"{verb} channel {saved.name}.")
                return redirect("tasks_app:alerts")
    else:
        initial = AlertChannelForm.initial_for(channel) if channel else None
        form = AlertChannelForm(initial=initial, channel=channel)
    context = {
        "form": form,
        "channel": channel,
        "stored_url": selectors.mask_url(channel.url) if channel else "",
    }
    return render(request, "tasks_app/alerts_channel_form.html", context, status=status)


@never_cache
@require_POST
def channel_rotate_secret(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    channel = _channel(pk)
    try:
        channel, secret = services.alert_channel_rotate_secret(channel, actor=actor_for(request))
    except services.ServiceError as error:
        messages.error(request, str(error))
        return redirect("tasks_app:alerts")
    return _secret_page(request, channel, secret, "New secret for", 200)


@require_POST
def channel_test(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    channel = _channel(pk)
    try:
        services.alert_channel_test(channel, actor=actor_for(request))
    except services.ServiceError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, f"Queued a test message to {channel.name}: see the delivery log below."
        )
    return redirect("tasks_app:alerts")


@require_http_methods(["GET", "HEAD", "POST"])
def rule_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    rule = _rule(pk)
    if request.method == "POST":
        services.alert_rule_delete(rule, actor=actor_for(request))
        messages.success(request, f"Deleted alert rule {rule.name}.")
        return redirect("tasks_app:alerts")
    if not actor_for(request).has_perm(MANAGE):
        raise PermissionDenied(NEED_PERMISSION)
    context = {
        "what": "alert rule",
        "name": rule.name,
        "note": "Its alerts and messages go with it; its deliveries leave the log.",
    }
    return render(request, "tasks_app/alerts_delete.html", context)


@require_http_methods(["GET", "HEAD", "POST"])
def channel_delete(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    channel = _channel(pk)
    if request.method == "POST":
        services.alert_channel_delete(channel, actor=actor_for(request))
        messages.success(request, f"Deleted channel {channel.name}.")
        return redirect("tasks_app:alerts")
    if not actor_for(request).has_perm(MANAGE):
        raise PermissionDenied(NEED_PERMISSION)
    context = {
        "what": "channel",
        "name": channel.name,
        "note": "Rules stop sending to it; its past deliveries stay in the log.",
    }
    return render(request, "tasks_app/alerts_delete.html", context)


def _secret_page(
    request: HtmxHttpRequest, channel: AlertChannel, secret: str, title: str, status: int
) -> HttpResponse:
    context = {
        "channel": channel,
        "secret": secret,
        "title": title,
        "target": selectors.mask_url(channel.url),
        "is_webhook": channel.kind == AlertChannelKind.WEBHOOK,
    }
    return render(request, "tasks_app/alerts_secret.html", context, status=status)


def _rule(pk: int) -> AlertRule:
    rule = AlertRule.objects.filter(pk=pk).first()
    if rule is None:
        raise Http404("No such alert rule.")
    return rule


def _channel(pk: int) -> AlertChannel:
    channel = AlertChannel.objects.filter(pk=pk).first()
    if channel is None:
        raise Http404("No such channel.")
    return channel
