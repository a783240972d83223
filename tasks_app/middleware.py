"""Staff-only access to every view that does not opt out with `login_not_required`."""

from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase

# URL names a signed-in non-staff user may still reach (to sign in as someone else, or out).
SIGN_IN_AND_OUT = frozenset({"login", "logout"})
API_NAMESPACE = "taskdeck_api"


class StaffRequiredMiddleware(LoginRequiredMiddleware):
    """Anonymous visitors go to the login page; signed-in users who are not staff get 403.

    Built on Django's LoginRequiredMiddleware so a view is protected by default, including
    views added later or by other apps; only views marked `login_not_required` (the login
    page itself) are open to anonymous visitors. Signed-in users who are not staff are refused
    everywhere but the login and logout pages, the admin included.
    """

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        match = request.resolver_match
        if match is not None and API_NAMESPACE in match.namespaces:
            return None  # the API answers for itself: 401/403 JSON, never a login redirect
        user = request.user
        if user.is_authenticated and not user.is_staff:
            if match is None or match.url_name not in SIGN_IN_AND_OUT:
                raise PermissionDenied("Taskdeck is for staff users only.")
            return None
        if not getattr(view_func, "login_required", True):
            return None  # the login pages, and the admin, which sends visitors to its own login
        if not user.is_authenticated:
            return self.handle_no_permission(request, view_func)
        return None
