"""What operators set at runtime, beside the run ledger: paused queues, per-job concurrency
limits, per-schedule missed-run policies, bulk operations over everything matching a filter, and
per-user display preferences. Each row is changed only through the services, which audit it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class QueuePause(models.Model):
    """A paused queue: no worker consumes it until it is resumed. Kept in the database so a worker
    that starts while the queue is paused leaves it alone (the worker start-up signal reads it)."""

    queue = models.CharField(max_length=100, unique=True)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    paused_by_label = models.CharField(max_length=255)
    paused_at = models.DateTimeField()

    class Meta:
        ordering = ("queue",)

    def __str__(self) -> str:
        return f"{self.queue} (paused by {self.paused_by_label})"


class JobLimit(models.Model):
    """An operator's concurrency limit for one job, overriding `@job(concurrency=N)`. A row with
    `concurrency` NULL lifts the code's limit; no row means the code's value applies."""

    job_name = models.CharField(max_length=255, unique=True)
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    updated_by_label = models.CharField(max_length=255)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("job_name",)
        constraints = [
            models.CheckConstraint(
                condition=Q(concurrency__isnull=True) | Q(concurrency__gte=1),
                name="joblimit_concurrency_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job_name}: {self.concurrency}"


class MissedRunPolicy(models.TextChoices):
    SKIP = "skip", "Skip missed runs"
    RUN_ONCE = "run_once", "Run once for all missed runs"
    RUN_ALL = "run_all", "Run every missed run (capped)"


class ScheduleOptions(models.Model):
    """Taskdeck's settings of a django-celery-beat schedule that beat itself has no field for."""

    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", on_delete=models.CASCADE, related_name="taskdeck_options"
    )
    missed_policy = models.CharField(
        max_length=16, choices=MissedRunPolicy.choices, default=MissedRunPolicy.RUN_ONCE
    )
    # RUN_ALL sends at most this many missed runs, the latest ones.
    missed_cap = models.PositiveIntegerField(default=10)

    class Meta:
        verbose_name_plural = "schedule options"
        constraints = [
            models.CheckConstraint(
                condition=Q(missed_cap__gte=1) & Q(missed_cap__lte=1000),
                name="scheduleoptions_missed_cap_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.periodic_task_id}: {self.missed_policy}"


class BulkAction(models.TextChoices):
    RETRY = "retry", "Retry"
    CANCEL = "cancel", "Cancel"


class BulkState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class BulkOperation(models.Model):
    """Retry or cancel every run matching a filter, done by a background job in batches. The
    matching set is fixed when it is requested (runs with id <= `max_run_id`); `cursor` is the
    last run id handled, committed with each batch, so an interrupted operation resumes where it
    stopped and never acts on a run twice."""

    action = models.CharField(max_length=16, choices=BulkAction.choices)
    # The runs list's filter, as the selector's query parameters.
    filters = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_label = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)
    state = models.CharField(max_length=16, choices=BulkState.choices, default=BulkState.QUEUED)
    max_run_id = models.BigIntegerField()
    expected = models.PositiveIntegerField(default=0)  # the count the operator confirmed
    cursor = models.BigIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)  # acted on
    skipped = models.PositiveIntegerField(default=0)  # matched, but no longer actionable
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The background job's run (its progress is the operation's).
    run = models.ForeignKey(
        "tasks_app.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{self.action} #{self.pk} ({self.state})"


class TimeDisplay(models.TextChoices):
    RELATIVE = "relative", "Relative"
    LOCAL = "local", "Local time"
    UTC = "utc", "UTC"


class UserPreference(models.Model):
    """One user's display choices, remembered across sessions and browsers."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="taskdeck_preference"
    )
    time_display = models.CharField(
        max_length=16, choices=TimeDisplay.choices, default=TimeDisplay.RELATIVE
    )

    def __str__(self) -> str:
        return f"{self.user_id}: {self.time_display}"
