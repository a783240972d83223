"""A plain Celery app for the baselines of the throughput benchmark: no Taskdeck task class, no
ledger, the same Django settings (CELERY_* namespace) and broker as the dashboard app.

`make_app("a")`: no result backend and ignored results (the limit). `make_app("b")`: stock
django-celery-results (`django-db`) with the project's result settings (extended results,
STARTED tracked). A worker runs it as `celery -A bench.stock_app worker` with BENCH_STOCK_MODE
set to `a` or `b`.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

STOCK_NOOP = "bench.stock_noop"


def noop() -> None:
    """Do nothing."""
    return None


def make_app(mode: str) -> Celery:
    """The stock app for mode `a` (no results) or `b` (django-celery-results)."""
    if mode not in {"a", "b"}:
        raise ValueError(f"Unknown stock mode {mode!r}: use a or b.")
    # Not the current app: in the publishing process the dashboard app stays current, so
    # `@shared_task` proxies (the Taskdeck jobs) keep resolving to it.
    app = Celery(f"bench_stock_{mode}", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    overrides: dict[str, Any] = {
        "task_routes": None,  # the project's router knows Taskdeck jobs only
        "task_track_started": True,
        "result_extended": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
    }
    if mode == "a":
        overrides.update(result_backend=None, task_ignore_result=True)
    else:
        overrides.update(result_backend="django-db", task_ignore_result=False)
    app.conf.update(overrides)
    app.task(name=STOCK_NOOP)(noop)
    return app


app = make_app(os.environ.get("BENCH_STOCK_MODE", "b"))
