from django.apps import AppConfig


class TasksAppConfig(AppConfig):
    name = "tasks_app"
    verbose_name = "Taskdeck"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the built-in jobs in every process (web, beat, shell), not only in workers,
        # so the dashboard can list and launch them.
        from celery.signals import task_postrun

        from . import tasks  # noqa: F401

        # With connection reuse on (CELERY_DB_REUSE_MAX), give tasks what Django gives
        # requests: after each one, drop connections that are broken or past CONN_MAX_AGE.
        task_postrun.connect(_close_old_connections, weak=False)


def _close_old_connections(**_: object) -> None:
    from django.db import close_old_connections

    close_old_connections()
