"""The one Celery app: configured from Django settings (CELERY_*), tasks found in installed apps."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

# Every task (plain @shared_task ones too) uses Taskdeck's task class, so every run is recorded.
app = Celery("dashboard", task_cls="tasks_app.worker.task:TaskdeckTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
