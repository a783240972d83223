from django.apps import AppConfig


class TasksAppConfig(AppConfig):
    name = "tasks_app"
    verbose_name = "Taskdeck"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register the built-in jobs in every process (web, beat, shell), not only in workers,
        # so the dashboard can list and launch them.
        from . import tasks  # noqa: F401
