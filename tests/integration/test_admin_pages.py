"""Staff can use the Django admin pages of django-celery-beat and django-celery-results."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_results.models import TaskResult


@pytest.fixture
def admin_client_(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("boss", password="x-Secret-123"))
    return client


@pytest.mark.django_db
def test_periodic_task_admin_pages_open(admin_client_: Client) -> None:
    every_minute = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    task = PeriodicTask.objects.create(
        name="ping often", task="taskdeck.ping", interval=every_minute
    )

    listing = admin_client_.get(reverse("admin:django_celery_beat_periodictask_changelist"))
    add = admin_client_.get(reverse("admin:django_celery_beat_periodictask_add"))
    change = admin_client_.get(
        reverse("admin:django_celery_beat_periodictask_change", args=[task.pk])
    )

    assert listing.status_code == 200
    assert b"ping often" in listing.content
    assert add.status_code == 200
    assert change.status_code == 200


@pytest.mark.django_db
def test_task_result_admin_pages_open(admin_client_: Client) -> None:
    stored = TaskResult.objects.create(
        task_id="abc-123", task_name="taskdeck.ping", status="SUCCESS", result='"pong"',
        date_done=timezone.now(),
    )  # fmt: skip

    listing = admin_client_.get(reverse("admin:django_celery_results_taskresult_changelist"))
    change = admin_client_.get(
        reverse("admin:django_celery_results_taskresult_change", args=[stored.pk])
    )

    assert listing.status_code == 200
    assert b"abc-123" in listing.content
    assert change.status_code == 200
