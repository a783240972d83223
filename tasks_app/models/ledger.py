"""The run ledger and the audit trail.

Celery's TaskResult (django-celery-results) keeps what a worker reports; a Run keeps what Celery
forgets: queued work, the exact parameters, who launched it, lineage, progress and cancellation.
Only `tasks_app.worker.lifecycle` changes a run's state.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class RunState(models.TextChoices):
    PENDING = "PENDING", "Queued"
    STARTED = "STARTED", "Started"
    PROGRESS = "PROGRESS", "Running"
    RETRY = "RETRY", "Waiting to retry"
    SUCCESS = "SUCCESS", "Succeeded"
    FAILURE = "FAILURE", "Failed"
    REVOKED = "REVOKED", "Cancelled"
    LOST = "LOST", "Lost"


FINAL_STATES = frozenset({RunState.SUCCESS, RunState.FAILURE, RunState.REVOKED, RunState.LOST})
ACTIVE_STATES = frozenset(set(RunState) - FINAL_STATES)
RUNNING_STATES = frozenset({RunState.STARTED, RunState.PROGRESS})  # a worker has it
QUEUED_STATES = frozenset({RunState.PENDING, RunState.RETRY})  # waiting for a worker
FAILED_STATES = frozenset({RunState.FAILURE, RunState.LOST})


class RunSource(models.TextChoices):
    FORM = "form", "Dashboard form"
    API = "api", "API"
    SCHEDULE = "schedule", "Schedule"
    CODE = "code", "Code"
    RETRY = "retry", "Retry"


class RunQuerySet(models.QuerySet["Run"]):
    """The run states by name, so no caller spells out a list of states."""

    def in_states(self, states: frozenset[RunState]) -> RunQuerySet:
        return self.filter(state__in=sorted(states))

    def active(self) -> RunQuerySet:
        """Queued or running: not final yet."""
        return self.in_states(ACTIVE_STATES)

    def running(self) -> RunQuerySet:
        return self.in_states(RUNNING_STATES)

    def queued(self) -> RunQuerySet:
        return self.in_states(QUEUED_STATES)

    def failed(self) -> RunQuerySet:
        """Failed or lost."""
        return self.in_states(FAILED_STATES)

    def final(self) -> RunQuerySet:
        return self.in_states(FINAL_STATES)


class Run(models.Model):
    """One execution request of a task, from the moment it is queued until it is final."""

    task_id = models.CharField(max_length=255, unique=True)
    # Indexed by (job_name, -queued_at, -id) below, which also serves plain lookups by name.
    job_name = models.CharField(max_length=255)
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.PENDING)

    # Exactly what the task was called with: JSON, never Celery's truncated repr.
    args = models.JSONField(default=list, blank=True)
    params = models.JSONField(default=dict, blank=True)

    source = models.CharField(max_length=16, choices=RunSource.choices, default=RunSource.CODE)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who or what launched it, in words: a username, "<username> (token <name>)", the schedule's
    # name, "code".
    actor_label = models.CharField(max_length=255, blank=True)
    schedule_name = models.CharField(max_length=255, blank=True)  # indexed below, with time
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retried_by"
    )
    root = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="chain"
    )

    queue = models.CharField(max_length=100, blank=True)
    priority = models.PositiveSmallIntegerField(null=True, blank=True)
    eta = models.DateTimeField(null=True, blank=True)
    # NULL, not "", for runs without a key: the unique constraint ignores NULLs.
    unique_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001

    worker = models.CharField(max_length=255, blank=True)
    queued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Celery's retry count of the latest accepted event; orders events of different attempts.
    retries = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(default=0)
    requeues = models.PositiveSmallIntegerField(default=0)

    progress_done = models.BigIntegerField(null=True, blank=True)
    progress_total = models.BigIntegerField(null=True, blank=True)
    progress_message = models.CharField(max_length=500, blank=True)
    progress_at = models.DateTimeField(null=True, blank=True)
    # How many times progress was written: shows the throttle at work.
    progress_writes = models.PositiveIntegerField(default=0)
    log = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)

    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.CharField(max_length=255, blank=True)
    cancel_terminate = models.BooleanField(default=False)
    # Set while the run waits for a free slot under its job's concurrency limit (still queued).
    slot_wait_since = models.DateTimeField(null=True, blank=True)

    artifact = models.FileField(upload_to="artifacts/", blank=True)

    objects = RunQuerySet.as_manager()

    class Meta:
        ordering = ("-queued_at", "-id")
        constraints = [
            # The database, not a check-then-insert, decides uniqueness: two simultaneous
            # launches of a unique job cannot both pass.
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=Q(state__in=sorted(ACTIVE_STATES)),
                name="run_unique_key_while_active",
            ),
        ]
        indexes = [
            models.Index(fields=["-queued_at", "-id"], name="run_queued_idx"),
            models.Index(fields=["state", "-queued_at", "-id"], name="run_state_queued_idx"),
            models.Index(fields=["job_name", "-queued_at", "-id"], name="run_job_queued_idx"),
            # The runs list's free-text filters: a rare value, or one matching nothing, must
            # not walk the whole history (bench/history.py).
            models.Index(fields=["actor_label", "-queued_at", "-id"], name="run_actor_queued_idx"),
            models.Index(
                fields=["schedule_name", "-queued_at", "-id"], name="run_schedule_queued_idx"
            ),
            models.Index(fields=["state", "heartbeat_at"], name="run_state_heartbeat_idx"),
            # The stats rollup reads runs by finish time (and cleanup deletes by it).
            models.Index(fields=["finished_at"], name="run_finished_idx"),
        ]
        permissions = [
            ("launch_job", "Can launch jobs"),
            ("retry_run", "Can retry runs"),
            ("cancel_run", "Can cancel runs"),
            ("manage_schedules", "Can manage schedules"),
            # Destructive built-in jobs ask for these besides launch_job (`@job(permission=)`).
            ("run_cleanup", "Can run the cleanup job (deletes run history)"),
            ("send_email", "Can send emails with the send-email job"),
            ("manage_queues", "Can pause and resume queues"),
            ("manage_job_limits", "Can change job concurrency limits"),
        ]

    def __str__(self) -> str:
        return f"{self.job_name} [{self.task_id}] {self.state}"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES


class AuditEntry(models.Model):
    """Who did what to which object, and when. Written by the services, never edited."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=255)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=255, db_index=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return (
            f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.action} {self.target_id}"
        )


class DeclarationOrigin(models.TextChoices):
    BUILTIN = "builtin", "Built in"
    CODE = "code", "Declared in code or settings"


class DeclaredSchedule(models.Model):
    """Marks a django-celery-beat schedule that code declares (Taskdeck's built-ins, or Celery's
    `beat_schedule`). The hashes let a restart tell an operator's edit from a code change: an
    edited schedule is kept as the operator left it, never silently overwritten."""

    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", on_delete=models.CASCADE, related_name="declaration"
    )
    origin = models.CharField(max_length=16, choices=DeclarationOrigin.choices)
    # What the code declares now (parameters masked), shown beside an edited schedule.
    declared = models.JSONField(default=dict)
    declared_hash = models.CharField(max_length=64)
    # The stored schedule's hash right after the code's version was last applied to it.
    applied_hash = models.CharField(max_length=64)
    synced_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.periodic_task_id} ({self.origin})"


class ApiToken(models.Model):
    """A personal API token: `Authorization: Bearer <token>` acts as its user, with exactly the
    user's permissions. The token itself is shown once, when issued (`tasks_app.tokens`), and
    never stored: only its SHA-256 digest is.

    A plain, fast hash is right here, unlike for passwords: a token is 32 random bytes from
    `secrets`, so nobody can guess it or brute-force it from a leaked digest whatever the hash
    costs (a slow hash only protects guessable, human-chosen secrets), while a deliberately slow
    one would add its cost to every API request. An unsalted digest also makes the lookup one
    indexed equality match.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, help_text="What the token is for.")
    # The token's first characters ("tdk_" and 8 random hex digits, not part of the secret), shown
    # in lists so a user can tell which token is which.
    prefix = models.CharField(max_length=16, db_index=True)
    digest = models.CharField(max_length=64, unique=True)  # hex SHA-256 of the whole token
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)  # updated at most once a minute
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Refused from this time on; NULL: never expires (revoke it when no longer needed).
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_active(self) -> bool:
        """Neither revoked nor expired. (Whether its user may still sign in is checked when it
        is used.)"""
        return self.revoked_at is None and not self.is_expired
