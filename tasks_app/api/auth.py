"""Who calls the API: `Authorization: Bearer <token>`, a personal token (tasks_app.tokens).

No session or cookie auth, so the API needs no CSRF token and a browser's cookies can never
act through it. A missing, unknown, revoked or expired token is 401 (an expired one says so, so
its owner knows to make a new one); the token of a user who is not (or no longer) staff is 403,
as the pages refuse such users.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja.errors import AuthenticationError
from ninja.security import HttpBearer

from ..models import ApiToken
from ..services import Actor
from ..tokens import authenticate, digest_of, expired
from .errors import ApiError


class TokenExpired(AuthenticationError):
    """A 401 that says the token expired, and when."""

    def __init__(self, token: ApiToken) -> None:
        assert token.expires_at is not None
        when = token.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        super().__init__(
            message=(
                f"This token ({token.prefix}…) expired on {when}. Create a new one under API "
                "tokens in the dashboard."
            )
        )


class BearerToken(HttpBearer):
    """Sets `request.auth` to the caller's Actor (its user, acting through the named token).
    Runs before ninja reads the body, so it also refuses bodies over the API's limit."""

    def __call__(self, request: HttpRequest) -> Any:
        length = request.META.get("CONTENT_LENGTH") or "0"
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        if not re.fullmatch(r"[0-9]+", length):
            raise ApiError(400, "Invalid Content-Length.", {"Content-Length": ["Not a number."]})
        digits = length.lstrip("0") or "0"
        # A 19-digit length is over any limit; checked first, as int() refuses huge texts.
        if len(digits) > 18 or int(digits) > settings.TASKDECK_API_MAX_BODY_BYTES:
            raise RequestDataTooBig(f"At most {settings.TASKDECK_API_MAX_BODY_BYTES} bytes.")
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> Actor | None:
        found = authenticate(token)
        if found is None:
            if _token_of_non_staff(token):
                raise PermissionDenied("This token's user is not staff.")
            if (stale := expired(token)) is not None:
                raise TokenExpired(stale)
            return None
        return Actor(user=found.user, token_name=found.name)


def actor(request: HttpRequest) -> Actor:
    found = getattr(request, "auth", None)
    assert isinstance(found, Actor), "the API's auth sets an Actor"
    return found


def _token_of_non_staff(raw: str) -> bool:
    return ApiToken.objects.filter(
        digest=digest_of(raw), revoked_at__isnull=True, user__is_active=True, user__is_staff=False
    ).exists()


def staff_or_token(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For the OpenAPI document and the docs page: a signed-in staff user or a valid token.
    A token is answered in JSON (401, or 403 for a non-staff user's), as the API answers it;
    without one, the document answers 401 JSON and the docs page sends a browser to the
    login page (or refuses a signed-in non-staff user, as every page does)."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            try:
                found = BearerToken().authenticate(request, header[7:].strip())
            except PermissionDenied as error:
                return _json_error(403, str(error))
            except TokenExpired as error:
                return _unauthorized(error.message)
            if found is None:
                return _unauthorized()
        elif not user.is_authenticated:
            if request.path.endswith(".json"):
                return _unauthorized()
            return redirect_to_login(request.get_full_path())
        elif not user.is_staff:
            if request.path.endswith(".json"):
                return _json_error(403, "Taskdeck is for staff users only.")
            raise PermissionDenied("Taskdeck is for staff users only.")
        return view(request, *args, **kwargs)

    return guarded


def _json_error(status: int, detail: str) -> JsonResponse:
    """The API's error shape, for the views ninja's exception handlers do not cover."""
    return JsonResponse({"detail": detail, "errors": {}}, status=status)


NO_VALID_TOKEN = "Give a valid token: Authorization: Bearer <token>."  # noqa: S105 - a message


def _unauthorized(detail: str = NO_VALID_TOKEN) -> JsonResponse:
    response = _json_error(401, detail)
    response["WWW-Authenticate"] = 'Bearer realm="taskdeck"'
    return response
