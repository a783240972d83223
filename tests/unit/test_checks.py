"""The system checks refuse a Celery app configured in a way Taskdeck cannot work with, naming
the setting; the project's own app passes them."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery, current_app
from django.core.management import call_command

from tasks_app.checks import RESULT_BACKEND, ROUTER, TASK_CLS, celery_config_errors
from tasks_app.jobs.registry import route_job

GOOD: dict[str, Any] = {
    "result_backend": RESULT_BACKEND,
    "task_routes": (ROUTER,),
    "task_serializer": "json",
    "result_serializer": "json",
    "accept_content": ["json"],
    "result_accept_content": ["json"],
}


def app_with(task_cls: str = TASK_CLS, **changes: Any) -> Celery:
    """A real Celery app (not the current one) configured like the project's, plus changes."""
    app = Celery("checked", task_cls=task_cls, set_as_current=False)
    app.conf.update({**GOOD, **changes})
    return app


def ids(app: Celery) -> list[str]:
    return [str(message.id) for message in celery_config_errors(app)]


def test_the_projects_own_app_passes() -> None:
    assert celery_config_errors(current_app) == []
    call_command("check", "--fail-level", "ERROR")


def test_a_correct_configuration_passes_with_the_router_given_as_a_function_too() -> None:
    assert ids(app_with()) == []
    assert ids(app_with(task_routes=[route_job, {"other.*": {"queue": "low"}}])) == []


def test_the_dotted_paths_written_before_the_worker_package_still_work() -> None:
    """Settings written before the runtime moved to tasks_app.worker keep working: the old
    paths of the task class and the result backend resolve to the same classes."""
    old = app_with(
        task_cls="tasks_app.jobs.task:TaskdeckTask",
        result_backend="tasks_app.backend:LedgerBackend",
    )
    assert ids(old) == []
    from tasks_app.backend import LedgerBackend as OldBackend
    from tasks_app.jobs.task import TaskdeckTask as OldTask
    from tasks_app.worker.backend import LedgerBackend
    from tasks_app.worker.task import TaskdeckTask

    assert (OldTask, OldBackend) == (TaskdeckTask, LedgerBackend)


def test_another_task_class_is_refused() -> None:
    [error] = celery_config_errors(app_with(task_cls="celery.app.task:Task"))
    assert error.id == "taskdeck.E001"
    assert TASK_CLS in str(error.hint)


@pytest.mark.parametrize(
    "backend", [None, "django-db", "redis://localhost/0", "no.such.module:Backend"]
)
def test_another_result_backend_is_refused(backend: str | None) -> None:
    [error] = celery_config_errors(app_with(result_backend=backend))
    assert error.id == "taskdeck.E002"
    assert "CELERY_RESULT_BACKEND" in error.msg
    assert RESULT_BACKEND in str(error.hint)


@pytest.mark.parametrize("routes", [None, (), ({"demo.*": {"queue": "low"}},)])
def test_routes_without_the_router_are_refused(routes: Any) -> None:
    assert ids(app_with(task_routes=routes)) == ["taskdeck.E003"]


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("task_serializer", "pickle", "CELERY_TASK_SERIALIZER"),
        ("result_serializer", "yaml", "CELERY_RESULT_SERIALIZER"),
        ("accept_content", ["json", "pickle"], "CELERY_ACCEPT_CONTENT"),
        ("result_accept_content", ["application/x-python-serialize"], "RESULT_ACCEPT_CONTENT"),
    ],
)
def test_anything_but_json_is_refused(setting: str, value: Any, named: str) -> None:
    [error] = celery_config_errors(app_with(**{setting: value}))
    assert error.id == "taskdeck.E004"
    assert named in error.msg
