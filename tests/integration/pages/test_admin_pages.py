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


@pytest.mark.django_db
def test_run_admin_is_read_only_and_masks_sensitive_parameters(admin_client_: Client) -> None:
    from tasks_app.models import Run

    run = Run.objects.create(
        task_id="r-1", job_name="demo.sensitive", params={"password": "hunter2-x", "label": "l"},
        queued_at=timezone.now(),
    )  # fmt: skip

    listing = admin_client_.get(reverse("admin:tasks_app_run_changelist"))
    page = admin_client_.get(reverse("admin:tasks_app_run_change", args=[run.pk]))

    assert listing.status_code == 200
    assert page.status_code == 200
    assert b"hunter2-x" not in page.content
    assert "••••••".encode() in page.content
    assert b'name="_save"' not in page.content
