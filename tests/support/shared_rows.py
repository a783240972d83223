"""Rows made once for all the tests of a module: for the grids that ask one question of every
page, role or action, where making the same users, runs and schedules before each of hundreds
of tests took most of their time.

The rows are made in a transaction that stays open while the module's tests run. Each test's
own transaction (pytest-django's) is a savepoint inside it, rolled back after the test, so
every test still starts from exactly these rows; the whole is rolled back after the module.
A test gets fresh model instances (`refetch`) and a fresh client carrying a session made once
(`signed_in`), so nothing a test changes in memory reaches the next one either. Not for a
module with `transactional_db` tests, which need the database empty and committed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Model
from django.test import Client

M = TypeVar("M", bound=Model)


@contextmanager
def module_rows(django_db_blocker: Any) -> Iterator[None]:
    """Hold a module's rows: use in a module-scoped fixture, making the rows inside."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield
        transaction.set_rollback(True)


def session_of(user: User) -> str:
    """The key of a session signed in as `user`, made as `Client.force_login` makes one."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def signed_in(session_key: str, **client_options: Any) -> Client:
    """A new client in the session `session_key` (see `session_of`)."""
    client = Client(**client_options)
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return client


def refetch(instance: M) -> M:
    """`instance` as the database holds it now, in a new object."""
    return type(instance)._default_manager.get(pk=instance.pk)
