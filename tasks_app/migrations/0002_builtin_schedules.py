"""Schedules for the built-in jobs: the lost-run reaper every 30 seconds and the daily cleanup.

Ordinary django-celery-beat rows, so operators edit or disable them like any other schedule.
"""

from typing import Any

from django.db import migrations

REAPER = "Taskdeck: reap lost runs"
CLEANUP = "Taskdeck: clean up old runs"


def create(apps: Any, schema_editor: Any) -> None:
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    crontab_model = apps.get_model("django_celery_beat", "CrontabSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    every_30s, _ = interval_model.objects.get_or_create(every=30, period="seconds")
    nightly, _ = crontab_model.objects.get_or_create(
        minute="30", hour="3", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="UTC",
    )  # fmt: skip
    task_model.objects.get_or_create(
        name=REAPER,
        defaults={
            "task": "taskdeck.reap_lost_runs",
            "interval": every_30s,
            "kwargs": "{}",
            "description": "Marks runs whose worker stopped sending heartbeats as lost.",
        },
    )
    task_model.objects.get_or_create(
        name=CLEANUP,
        defaults={
            "task": "taskdeck.cleanup",
            "crontab": nightly,
            "kwargs": '{"days": 30, "failed_days": 90, "batch_size": 1000}',
            "description": "Deletes finished runs after 30 days, failed and lost ones after 90.",
        },
    )


def remove(apps: Any, schema_editor: Any) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[REAPER, CLEANUP]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("tasks_app", "0001_ledger"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
