"""/metrics for Prometheus: off (404) unless TASKDECK_METRICS_TOKEN is set, then open to a
scraper that sends the token, as a bearer token or as the password of HTTP basic auth (the user
name is not checked). Prometheus has no session: the view opts out of the staff login, and
only answers GET and HEAD (no state changes, so no CSRF)."""

from __future__ import annotations

import base64
import binascii
import hmac

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from .. import selectors

REALM = 'Basic realm="taskdeck-metrics"'


@login_not_required
@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    token = str(settings.TASKDECK_METRICS_TOKEN or "")
    if not token:
        raise Http404("Metrics are off (TASKDECK_METRICS_TOKEN is not set).")
    if not presented_token_matches(request.headers.get("Authorization", ""), token):
        response = HttpResponse("Unauthorized.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = REALM
        return response
    accept = request.headers.get("Accept", "")
    if request.method == "HEAD":
        return HttpResponse(content_type=selectors.metrics_content_type(accept))
    body, content_type = selectors.metrics_exposition(accept)
    return HttpResponse(body, content_type=content_type)


def presented_token_matches(authorization: str, token: str) -> bool:
    """`Bearer <token>`, or `Basic base64(<any user>:<token>)`; compared in constant time."""
    scheme, _, credentials = authorization.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        presented = credentials
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
        _, colon, presented = decoded.partition(":")
        if not colon:
            return False
    else:
        return False
    return hmac.compare_digest(presented.encode(), token.encode())
