"""Staff-only access to every view that does not opt out with `login_not_required`, and the
web requests' statement timeout."""

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.core.exceptions import MiddlewareNotUsed, PermissionDenied
from django.db import DatabaseError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import render

# URL names a signed-in non-staff user may still reach (to sign in as someone else, or out).
SIGN_IN_AND_OUT = frozenset({"login", "logout"})
API_NAMESPACE = "taskdeck_api"
logger = logging.getLogger(__name__)


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


# SQLSTATE 57014 (query_canceled): PostgreSQL stopped a statement at `statement_timeout`.
QUERY_CANCELED = "57014"
TIMEOUT_DETAIL = (
    "The database took too long to answer (over the web statement timeout), so the query "
    "was stopped. Narrow the filter or try again in a moment."
)


def is_statement_timeout(error: BaseException) -> bool:
    """Whether `error` is a statement PostgreSQL cancelled (the statement timeout, or an
    operator's pg_cancel_backend): Django's OperationalError around psycopg's QueryCanceled."""
    if not isinstance(error, OperationalError):
        return False
    cause = error.__cause__
    return QUERY_CANCELED in (getattr(cause, "sqlstate", None), getattr(cause, "pgcode", None))


class StatementTimeoutMiddleware:
    """Bounds every SQL statement of a web request to TASKDECK_WEB_STATEMENT_TIMEOUT_MS on
    PostgreSQL, so one slow query (a search, a filter no index serves) costs the request, never
    a web worker held for minutes; a cancelled statement becomes a 503 that says so.

    Only web requests: the setting is made per request on the request's connection and reset
    after it (connections persist across requests, CONN_MAX_AGE), so workers, beat, migrations
    and management commands, which never pass through here, keep the server's default. A
    session-level `SET`, as `SET LOCAL` would last only until the first statement's commit in
    autocommit mode. SQLite has no statement timeout: there it does nothing.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        self.timeout_ms = int(getattr(settings, "TASKDECK_WEB_STATEMENT_TIMEOUT_MS", 0) or 0)
        if self.timeout_ms <= 0 or connection.vendor != "postgresql":
            raise MiddlewareNotUsed("No web statement timeout (0, or not PostgreSQL).")

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        with connection.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {self.timeout_ms}")
        try:
            return self.get_response(request)
        finally:
            self._reset()

    @staticmethod
    def _reset() -> None:
        """Back to the server's default. A connection that cannot take it is closed rather
        than kept with the web's timeout, unless a transaction encloses the request (tests,
        ATOMIC_REQUESTS): a `SET` is transactional, so its rollback undoes it."""
        if connection.connection is None or connection.needs_rollback:
            return
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET statement_timeout")
        except DatabaseError:
            if not connection.in_atomic_block:
                connection.close()

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        if not is_statement_timeout(exception):
            return None
        logger.warning(
            "Statement timeout (%d ms) on %s %s", self.timeout_ms, request.method, request.path
        )
        return statement_timeout_response(request)


def statement_timeout_response(request: HttpRequest) -> HttpResponseBase:
    """503 for a cancelled statement: JSON `{"detail": ...}` for the API, a short fragment for
    an htmx request (it asked for a region, not a page), else a page that says what happened."""
    match = request.resolver_match
    if match is not None and API_NAMESPACE in match.namespaces:
        return JsonResponse({"detail": TIMEOUT_DETAIL, "errors": {}}, status=503)
    if request.headers.get("HX-Request") == "true":
        return HttpResponse(
            f'<p class="error" role="alert">{TIMEOUT_DETAIL}</p>',
            status=503,
            content_type="text/html; charset=utf-8",
        )
    return render(request, "tasks_app/query_timeout.html", {"detail": TIMEOUT_DETAIL}, status=503)
