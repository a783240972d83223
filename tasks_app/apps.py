from django.apps import AppConfig


class TasksAppConfig(AppConfig):
    name = "tasks_app"
    verbose_name = "Taskdeck"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Imports live in the functions here because Django loads this module before the
        # models: what they import needs the app registry ready (Django's documented pattern).
        # Register the built-in jobs in every process (web, beat, shell), not only in workers,
        # so the dashboard can list and launch them.
        from celery.signals import (
            celeryd_after_setup,
            task_postrun,
            worker_ready,
            worker_shutdown,
        )
        from django.conf import settings
        from django.db.models.signals import post_migrate, post_save

        from . import checks, tasks  # noqa: F401  (registers the system checks; the built-ins)
        from .services.tokens import revoke_tokens_on_password_change
        from .worker import presence, queue_pauses

        # With connection reuse on (CELERY_DB_REUSE_MAX), give tasks what Django gives
        # requests: after each one, drop connections that are broken or past CONN_MAX_AGE.
        task_postrun.connect(_close_old_connections, weak=False)
        post_migrate.connect(_sync_declared_schedules, sender=self, weak=False)
        # A worker's main process keeps itself in the online set that /metrics counts.
        worker_ready.connect(presence.on_worker_ready, weak=False)
        worker_shutdown.connect(presence.on_worker_shutdown, weak=False)
        # Paused queues (tasks_app.worker.queue_pauses): left out before the consumer starts,
        # then checked against the database at every heartbeat interval.
        celeryd_after_setup.connect(queue_pauses.on_after_setup, weak=False)
        worker_ready.connect(queue_pauses.on_worker_ready, weak=False)
        worker_shutdown.connect(queue_pauses.on_worker_shutdown, weak=False)
        # A changed password revokes the user's API tokens (pages, admin, changepassword alike).
        post_save.connect(
            revoke_tokens_on_password_change, sender=settings.AUTH_USER_MODEL, weak=False
        )


def _close_old_connections(**_: object) -> None:
    from django.db import close_old_connections

    close_old_connections()


def _sync_declared_schedules(**_: object) -> None:
    """After `migrate`, so the dashboard lists declared schedules before beat first starts."""
    from celery import current_app

    from .schedules.declared import sync_declared_schedules

    sync_declared_schedules(current_app)
