"""Login throttling glue for django-axes (configured in settings: AXES_*).

Axes counts failed logins per (username, client address) pair in the database (so every web
process and host shares the count) and refuses further attempts for a cool-off period. Never by
username alone: anyone could then lock the real admin out by failing five times. The
adaptations live here: a separate, higher limit per address (one address guessing many
usernames), calls without a request, and the client address behind trusted proxies.
"""

from __future__ import annotations

from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest


class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lockout check for every login made through a request (the login page, the admin's).

    Axes refuses `authenticate()` calls without a request (it raises). Those come from code,
    not from a visitor (management commands, tests, a host project's scripts), so there is no
    one to throttle: they skip the check and go on to the next backend (ModelBackend).
    """

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        super().authenticate(request, username, password, **kwargs)
        return None


class LoginThrottleHandler(AxesDatabaseHandler):
    """Axes' database handler plus a per-address limit (TASKDECK_LOGIN_ADDRESS_FAILURE_LIMIT).

    Axes compares one failure count with one limit (AXES_FAILURE_LIMIT); its lockout parameters
    count the (username, address) pair. The address's own total, over every username within the
    cool-off, has a higher limit; reaching it counts as the pair limit reached, so axes' own
    checks (before a login, after a failure) refuse every username from that address. A
    successful login clears only its own pair (axes' reset follows the lockout parameters), so
    logging in to one's own account does not wipe an address's guesses at others.
    """

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        pair = int(super().get_failures(request, credentials))
        limit = int(get_failure_limit(request, credentials))
        if pair >= limit:
            return pair
        return limit if address_failures(request) >= address_failure_limit() else pair


def address_failure_limit() -> int:
    return int(getattr(settings, "TASKDECK_LOGIN_ADDRESS_FAILURE_LIMIT", 20))


def address_failures(request: HttpRequest) -> int:
    """Failed logins from the request's address, over every username, within the cool-off."""
    attempts = AccessAttempt.objects.filter(ip_address=request.axes_ip_address)  # type: ignore[attr-defined]
    if settings.AXES_COOLOFF_TIME is not None:
        attempts = attempts.filter(attempt_time__gte=get_cool_off_threshold(request))
    return int(attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0)


def client_ip(request: HttpRequest) -> str:
    """The visitor's address for the per-address login limit.

    The connection's own address, unless TASKDECK_TRUSTED_PROXIES says how many reverse proxies
    stand in front of the web server: each appends the address it received the request from to
    X-Forwarded-For, so the client is that many entries from the right (anything further left
    was written by the client and is not trusted).
    """
    remote = str(request.META.get("REMOTE_ADDR", ""))
    count = int(getattr(settings, "TASKDECK_TRUSTED_PROXIES", 0))
    if count <= 0:
        return remote
    header = str(request.META.get("HTTP_X_FORWARDED_FOR", ""))
    hops = [hop.strip() for hop in header.split(",") if hop.strip()]
    return hops[-count] if len(hops) >= count else remote
