"""Schemathesis over every operation of the API: requests generated from the OpenAPI document
(valid and invalid), sent with a real token through Django's WSGI handler, checked for no
server error and a response (status, headers, body) that matches the document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from tasks_app.api.app import api
from tasks_app.tokens import issue_token

# The document as the API serves it (test_api.py checks it is served); the app answers the calls.
schema = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/v1/"))
schema.app = get_wsgi_application()


@pytest.fixture
def bearer(db: None, broker: str) -> Iterator[str]:
    """A superuser's token; launches reach the test broker (emptied afterwards)."""
    user, _ = User.objects.get_or_create(
        username="fuzzer", defaults={"is_staff": True, "is_superuser": True}
    )
    # As Django's test client does: a request must not close the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield f"Bearer {issue_token(user, 'schemathesis')[1]}"
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)
def test_every_operation_conforms(case: schemathesis.Case[Any], bearer: str) -> None:
    # The checks and their settings: schemathesis.toml at the top of the repository.
    case.call_and_validate(headers={"Authorization": bearer})
