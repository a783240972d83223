"""Who calls the API: `Authorization: Bearer <token>`, a personal token (tasks_app.tokens).

No session or cookie auth, so the API needs no CSRF token and a browser's cookies can never
act through it. A missing or unknown token is 401; the token of a user who is not (or no
longer) staff is 403, as the pages refuse such users.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja.security import HttpBearer

from ..models import ApiToken
from ..services import Actor
from ..tokens import authenticate, digest_of


class BearerToken(HttpBearer):
    """Sets `request.auth` to the caller's Actor (its user, acting through the named token).
    Runs before ninja reads the body, so it also refuses bodies over the API's limit."""

    def __call__(self, request: HttpRequest) -> Any:
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) > settings.TASKDECK_API_MAX_BODY_BYTES:
            raise RequestDataTooBig(f"At most {settings.TASKDECK_API_MAX_BODY_BYTES} bytes.")
        return super().__call__(request)

    def authenticate(self, request: HttpRequest, token: str) -> Actor | None:
        found = authenticate(token)
        if found is None:
            if _token_of_non_staff(token):
                raise PermissionDenied("This token's user is not staff.")
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
    The document answers 401 JSON; the docs page sends a browser to the login page."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            if BearerToken().authenticate(request, header[7:].strip()) is None:
                return _unauthorized()
        elif not user.is_authenticated:
            if request.path.endswith(".json"):
                return _unauthorized()
            return redirect_to_login(request.get_full_path())
        elif not user.is_staff:
            raise PermissionDenied("Taskdeck is for staff users only.")
        return view(request, *args, **kwargs)

    return guarded


def _unauthorized() -> JsonResponse:
    response = JsonResponse(
        {"detail": "Give a valid token: Authorization: Bearer <token>."}, status=401
    )
    response["WWW-Authenticate"] = 'Bearer realm="taskdeck"'
    return response
