"""Helpers for tests that follow runs through a real worker."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import close_old_connections

from tasks_app.models import FINAL_STATES, Run, RunState
from tasks_app.services import Actor
from tests.support.services import wait_for


def operator() -> Actor:
    user, _ = User.objects.get_or_create(
        username="operator", defaults={"is_staff": True, "is_superuser": True}
    )
    return Actor(user=user)


def run_in(task_id: str, states: Iterable[RunState], timeout: float = 30.0) -> Run:
    wanted = set(states)

    def current() -> Run | None:
        close_old_connections()
        run = Run.objects.get(task_id=task_id)
        return run if run.state in wanted else None

    run: Run = wait_for(current, timeout)
    return run


def finished(task_id: str, timeout: float = 30.0) -> Run:
    return run_in(task_id, FINAL_STATES, timeout)
