"""Helpers shared by the page views."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme

from ..services import Actor
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
