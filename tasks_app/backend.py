"""Where the result backend lived before the worker runtime got its own package.

Settings written before keep working: `CELERY_RESULT_BACKEND = "tasks_app.backend:LedgerBackend"`
resolves here. New settings name `tasks_app.worker.backend:LedgerBackend`; nothing in the app
imports this module.
"""

from .worker.backend import LedgerBackend

__all__ = ["LedgerBackend"]
