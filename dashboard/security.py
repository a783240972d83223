"""Login throttling glue for django-axes (configured in settings: AXES_*).

Axes counts failed logins by username and by client address in the database (so every web
process and host shares the count) and refuses further attempts for a cool-off period. Two
small adaptations live here.
"""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.conf import settings
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
