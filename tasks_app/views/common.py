"""Helpers shared by the page views."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from ..services import Actor, AlreadyActive, BrokerUnavailable, ParamsError, ServiceError
from ..types import HtmxHttpRequest


def actor_for(request: HtmxHttpRequest | HttpRequest) -> Actor:
    return Actor(user=request.user)


def safe_next(request: HttpRequest, fallback: str) -> str:
    """The `next` URL if it points back into this site, else `fallback`."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


# Why a launch (or a re-run) from a form can be refused, besides its options.
LaunchRefused = ParamsError | ServiceError | AlreadyActive | BrokerUnavailable
LAUNCH_REFUSALS = (ParamsError, ServiceError, AlreadyActive, BrokerUnavailable)


def show_launch_refusal(form: forms.BaseForm, error: LaunchRefused, *, conflict: int = 400) -> int:
    """Put why a launch was refused on its form; the status to answer with. `conflict` is the
    status of a service's refusal (a re-run of an active run is a 409; launching a housekeeping
    job by hand, a 400)."""
    if isinstance(error, ParamsError):
        error.add_to_form(form)
        return 400
    if isinstance(error, BrokerUnavailable):
        form.add_error(None, "The broker is unavailable, so nothing was queued. Try again shortly.")
        return 503
    form.add_error(None, str(error))
    return 409 if isinstance(error, AlreadyActive) else conflict
