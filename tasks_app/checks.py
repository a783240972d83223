"""Django system checks for the Celery settings Taskdeck cannot work without.

Without them a wrong setting shows up late and far from its cause: a run that is never
recorded (another task class), a TypeError on the first page that reads the ledger (another
result backend), jobs on the wrong queue (no router), or a pickled message accepted. As
checks they fail `manage.py check`, `migrate` and `runserver` at once, each naming the
setting and the value it needs (ids taskdeck.E001-E004).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from celery import Celery, current_app
from celery.app.backends import by_url
from celery.exceptions import ImproperlyConfigured as CeleryImproperlyConfigured
from django.core.checks import CheckMessage, Error, register
from django.utils.module_loading import import_string

from .jobs.registry import route_job
from .worker.backend import LedgerBackend
from .worker.task import TaskdeckTask

TASK_CLS = "tasks_app.worker.task:TaskdeckTask"
RESULT_BACKEND = "tasks_app.worker.backend:LedgerBackend"
ROUTER = "tasks_app.jobs.registry.route_job"
JSON = frozenset({"json", "application/json"})


@register()
def celery_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    return celery_config_errors(current_app)


def celery_config_errors(app: Celery) -> list[CheckMessage]:
    """What is wrong with `app`'s configuration for Taskdeck (empty: nothing)."""
    return [
        *_task_class(app),
        *_result_backend(app),
        *_router(app),
        *_serializers(app),
    ]


def _task_class(app: Celery) -> list[CheckMessage]:
    if isinstance(app.Task, type) and issubclass(app.Task, TaskdeckTask):
        return []
    return [
        Error(
            f"The Celery app's task class is {app.Task.__qualname__}, so runs are not recorded.",
            hint=f'Create the app with Celery(..., task_cls="{TASK_CLS}").',
            id="taskdeck.E001",
        )
    ]


def _result_backend(app: Celery) -> list[CheckMessage]:
    configured = app.conf.result_backend
    try:
        # (class, url); celery-types says the class alone.
        resolved: Any = by_url(configured, app.loader) if configured else (None, None)
        backend_cls = resolved[0]
    except (ImportError, ValueError, CeleryImproperlyConfigured) as error:
        found = f"{configured!r} ({error})"
    else:
        if isinstance(backend_cls, type) and issubclass(backend_cls, LedgerBackend):
            return []
        found = repr(configured)
    return [
        Error(
            f"CELERY_RESULT_BACKEND is {found}: the run ledger needs its own backend.",
            hint=f'Set CELERY_RESULT_BACKEND = "{RESULT_BACKEND}".',
            id="taskdeck.E002",
        )
    ]


def _router(app: Celery) -> list[CheckMessage]:
    routes = app.conf.task_routes
    entries: Iterable[Any] = (
        routes if isinstance(routes, list | tuple) else () if routes is None else (routes,)
    )
    for entry in entries:
        router = _resolved(entry)
        if router is route_job:
            return []
    return [
        Error(
            "CELERY_TASK_ROUTES does not include Taskdeck's router: jobs would ignore their "
            "declared queue.",
            hint=f'Add "{ROUTER}" to CELERY_TASK_ROUTES (first, before your own routes).',
            id="taskdeck.E003",
        )
    ]


def _resolved(entry: Any) -> Any:
    if not isinstance(entry, str):
        return entry
    try:
        return import_string(entry.replace(":", "."))
    except ImportError:
        return None


def _serializers(app: Celery) -> list[CheckMessage]:
    conf = app.conf
    accepted = set(conf.accept_content or ())
    result_accepted = set(conf.result_accept_content or accepted)
    wrong = [
        name
        for name, ok in (
            ("CELERY_TASK_SERIALIZER", conf.task_serializer == "json"),
            ("CELERY_RESULT_SERIALIZER", conf.result_serializer == "json"),
            ("CELERY_ACCEPT_CONTENT", bool(accepted) and accepted <= JSON),
            ("CELERY_RESULT_ACCEPT_CONTENT", bool(result_accepted) and result_accepted <= JSON),
        )
        if not ok
    ]
    if not wrong:
        return []
    return [
        Error(
            f"{', '.join(wrong)} must be JSON only: any other serializer (pickle above all) "
            "lets whoever can write to the broker run code in the workers.",
            hint='Set the serializers to "json" and the accepted content to ["json"].',
            id="taskdeck.E004",
        )
    ]
