"""The JSON API: `/api/v1/`, token auth, the OpenAPI document and a docs page.

Built on django-ninja: the document is generated from the same typed signatures and pydantic
schemas that parse the input, so the two cannot drift (schemathesis checks every operation
against it in CI). DRF with drf-spectacular would need serializers beside the schemas and a
second source of truth for the document; ninja is smaller and typed end to end.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.operation import Operation

from ..middleware import TIMEOUT_DETAIL, is_statement_timeout
from ..services import AlreadyActive, BrokerUnavailable, NotRetriable, ParamsError, ServiceError
from . import alerts, bulk_operations, calendar, jobs, preferences, queues, runs, schedules, stats
from .auth import BearerToken, TokenExpired, staff_or_token
from .errors import ApiError, field_errors

api = NinjaAPI(
    title="Taskdeck API",
    version="1",
    description=(
        "Launch jobs, follow and retry runs, and manage schedules and alerts. Authenticate with a "
        "personal token (create one under API tokens in the dashboard, or with "
        "`manage.py create_api_token USERNAME`): `Authorization: Bearer <token>`. "
        "The token acts with its user's permissions; every action is audited."
    ),
    auth=BearerToken(),  # bearer tokens only: no cookie acts through the API, so no CSRF
    urls_namespace="taskdeck_api",
    docs_decorator=staff_or_token,
)
ROUTERS = (
    # calendar before schedules: `/schedules/calendar` is not a schedule's id.
    calendar.router,
    # bulk_operations around runs: see its docstring.
    jobs.router, bulk_operations.router, runs.router, bulk_operations.item_router,
    schedules.router, stats.router,
    alerts.router, queues.router,
    preferences.router,
)  # fmt: skip
for router in ROUTERS:
    api.add_router("", router)


def _operations() -> Iterator[Operation]:
    for router in (*ROUTERS, api.default_router):
        for path_view in router.path_operations.values():
            yield from path_view.operations


def _query_names(operation: Operation) -> frozenset[str]:
    """The query parameters an operation declares: the names ninja reads from the query
    string and publishes in the OpenAPI document."""
    names: set[str] = set()
    for model in operation.models:
        if getattr(model, "__ninja_param_source__", None) == "query":
            names.update(getattr(model, "__ninja_flatten_map__", None) or model.model_fields)
    return frozenset(names)


def _takes_body(operation: Operation) -> bool:
    return any(getattr(m, "__ninja_param_source__", None) == "body" for m in operation.models)


def _is_empty(body: bytes) -> bool:
    """No body, or `{}` (what many clients send with a bodiless POST)."""
    if not body.strip():
        return True
    try:
        return bool(json.loads(body) == {})
    except (ValueError, RecursionError):  # not JSON, or nested too deep to read
        return False


def _strict_input(view_func: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse what an operation would otherwise silently ignore: query parameters it does not
    declare, and a body where it takes none. Runs after auth (so a caller without a token
    still gets 401) and before the operation acts (so nothing is queued)."""
    operation = next(op for op in _operations() if op.view_func is view_func)
    allowed = _query_names(operation)
    takes_body = _takes_body(operation)

    @wraps(view_func)
    def checked(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        unknown = sorted(set(request.GET) - allowed)
        if unknown:
            raise ApiError(400, "Unknown parameters.", {k: ["Unknown parameter."] for k in unknown})
        if not takes_body and not _is_empty(request.body):
            raise ApiError(400, "This operation takes no body.", {"body": ["Send none, or {}."]})
        return view_func(request, *args, **kwargs)

    return checked


# "operation" mode: applied to every operation's function, after auth and input parsing.
api.add_decorator(_strict_input, mode="operation")


def _error(
    request: HttpRequest, status: int, detail: str, errors: dict[str, list[str]] | None = None
) -> HttpResponse:
    return api.create_response(request, {"detail": detail, "errors": errors or {}}, status=status)


@api.exception_handler(ApiError)
def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return _error(request, exc.status, exc.detail, exc.errors)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """Pydantic's errors, by field: `body.params` becomes `params`, `query.limit` `limit`."""
    errors: dict[str, list[str]] = {}
    for error in exc.errors:
        location = [
            str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")
        ]
        if location and location[0] in ("payload", "query", "body"):
            location = location[1:]
        errors.setdefault(".".join(location) or "body", []).append(_message(error))
    return _error(request, 400, "Invalid input.", errors)


def _message(error: dict[str, Any]) -> str:
    """Pydantic's message, without the "Value error, " it puts before our validators' own
    sentences (they are written for the user as they are)."""
    raised = (error.get("ctx") or {}).get("error")  # ninja has made the exception a string
    if error.get("type") == "value_error" and isinstance(raised, str | ValueError) and raised:
        return str(raised)
    return str(error.get("msg", "invalid"))


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    """ninja's own refusals (a body that is not JSON, ...), in the same shape as ours."""
    errors = {"body": [exc.message]} if exc.status_code == 400 else {}
    return _error(request, exc.status_code, exc.message, errors)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    detail = exc.message if isinstance(exc, TokenExpired) else ""
    response = _error(request, 401, detail or "Give a valid token: Authorization: Bearer <token>.")
    response["WWW-Authenticate"] = 'Bearer realm="taskdeck"'
    return response


@api.exception_handler(PermissionDenied)
def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return _error(request, 403, str(exc) or "Not permitted.")


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, str(exc) or "Not found.")


@api.exception_handler(ParamsError)
def _bad_params(request: HttpRequest, exc: ParamsError) -> HttpResponse:
    return _error(request, 400, "Invalid parameters.", field_errors("params", exc.errors))


@api.exception_handler(AlreadyActive)
def _already_active(request: HttpRequest, exc: AlreadyActive) -> HttpResponse:
    return _error(request, 409, str(exc))


@api.exception_handler(NotRetriable)
def _not_retriable(request: HttpRequest, exc: NotRetriable) -> HttpResponse:
    return _error(request, 409, str(exc))


@api.exception_handler(ServiceError)
def _refused(request: HttpRequest, exc: ServiceError) -> HttpResponse:
    """A refusal names the field at fault when the service knows it (`field`), else the
    request as a whole: every 400 names at least one key in `errors`."""
    field = getattr(exc, "field", None) or "request"
    return _error(request, 400, str(exc), {field: [str(exc)]})


@api.exception_handler(BrokerUnavailable)
def _broker_down(request: HttpRequest, exc: BrokerUnavailable) -> HttpResponse:
    return _error(request, 503, "The broker is unavailable, so nothing was queued. Try again.")


@api.exception_handler(SuspiciousOperation)
def _malformed(request: HttpRequest, exc: SuspiciousOperation) -> HttpResponse:
    """What Django refuses in the request itself (e.g. more query parameters than
    DATA_UPLOAD_MAX_NUMBER_FIELDS): a 400, as Django answers it, but in the API's shape,
    logged to the "django.security" logger as Django logs it."""
    logging.getLogger(f"django.security.{type(exc).__name__}").error(str(exc))
    return _error(request, 400, "The request was refused as malformed.", {"request": [str(exc)]})


@api.exception_handler(OperationalError)
def _statement_timeout(request: HttpRequest, exc: OperationalError) -> HttpResponse:
    """A statement cancelled at the web statement timeout: 503 in the API's shape (ninja
    would otherwise answer 500 with a traceback under DEBUG). Any other database error is
    Django's to handle."""
    if not is_statement_timeout(exc):
        raise exc
    return _error(request, 503, TIMEOUT_DETAIL)


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: Any) -> HttpResponse:
    return _error(request, 413, "The body is over the API's limit.")
