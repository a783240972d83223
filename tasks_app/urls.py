"""Taskdeck's pages; the host project includes these under a prefix of its choice."""

from django.urls import path

from .views import (
    alerts,
    audit,
    bulk_operations,
    jobs,
    overview,
    preferences,
    runs,
    schedules,
    tokens,
    workers,
)

app_name = "tasks_app"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("jobs/", jobs.jobs, name="jobs"),
    path("jobs/<str:name>/", jobs.launch, name="launch"),
    path("runs/", runs.runs, name="runs"),
    path("runs/bulk/", runs.runs_bulk, name="runs_bulk"),
    path("runs/retry-failed/", runs.runs_retry_failed, name="runs_retry_failed"),
    path("bulk-operations/new/", bulk_operations.bulk_operation_new, name="bulk_operation_new"),
    path(
        "bulk-operations/offer/", bulk_operations.bulk_operation_offer, name="bulk_operation_offer"
    ),
    path("bulk-operations/<int:pk>/", bulk_operations.bulk_operation, name="bulk_operation"),
    path(
        "bulk-operations/<int:pk>/resume/",
        bulk_operations.bulk_operation_resume,
        name="bulk_operation_resume",
    ),
    path("runs/<str:task_id>/", runs.run_detail, name="run"),
    path("runs/<str:task_id>/retry/", runs.run_retry, name="run_retry"),
    path("runs/<str:task_id>/rerun/", runs.run_rerun_form, name="run_rerun"),
    path("runs/<str:task_id>/cancel/", runs.run_cancel, name="run_cancel"),
    path("runs/<str:task_id>/file/", runs.run_artifact, name="run_artifact"),
    path("schedules/", schedules.schedules, name="schedules"),
    path("schedules/new/", schedules.schedule_new, name="schedule_new"),
    path("schedules/bulk/", schedules.schedules_bulk, name="schedules_bulk"),
    path("schedules/preview/", schedules.schedule_preview, name="schedule_preview"),
    path("schedules/params/", schedules.schedule_params, name="schedule_params"),
    path("schedules/calendar/", schedules.schedules_calendar, name="schedules_calendar"),
    path("schedules/<int:pk>/", schedules.schedule_detail, name="schedule"),
    path("schedules/<int:pk>/edit/", schedules.schedule_edit, name="schedule_edit"),
    path("schedules/<int:pk>/toggle/", schedules.schedule_toggle, name="schedule_toggle"),
    path("schedules/<int:pk>/run/", schedules.schedule_run, name="schedule_run"),
    path("schedules/<int:pk>/delete/", schedules.schedule_delete, name="schedule_delete"),
    path("schedules/<int:pk>/reset/", schedules.schedule_reset, name="schedule_reset"),
    path("workers/", workers.workers, name="workers"),
    path("workers/panel/", workers.workers_panel, name="workers_panel"),
    # <path:>: a queue name may hold a "/" (a worker's -Q takes any name).
    path("workers/queues/<path:name>/pause/", workers.queue_pause, name="queue_pause"),
    path("workers/queues/<path:name>/resume/", workers.queue_resume, name="queue_resume"),
    path("audit/", audit.audit, name="audit"),
    path("alerts/", alerts.alerts, name="alerts"),
    path("alerts/rules/new/", alerts.rule_new, name="alert_rule_new"),
    path("alerts/rules/<int:pk>/edit/", alerts.rule_edit, name="alert_rule_edit"),
    path("alerts/rules/<int:pk>/delete/", alerts.rule_delete, name="alert_rule_delete"),
    path("alerts/channels/new/", alerts.channel_new, name="alert_channel_new"),
    path("alerts/channels/<int:pk>/edit/", alerts.channel_edit, name="alert_channel_edit"),
    path("alerts/channels/<int:pk>/delete/", alerts.channel_delete, name="alert_channel_delete"),
    path(
        "alerts/channels/<int:pk>/rotate-secret/",
        alerts.channel_rotate_secret,
        name="alert_channel_rotate_secret",
    ),
    path("alerts/channels/<int:pk>/test/", alerts.channel_test, name="alert_channel_test"),
    path("tokens/", tokens.tokens, name="tokens"),
    path("preferences/", preferences.preferences, name="preferences"),
    path("tokens/<int:pk>/revoke/", tokens.token_revoke, name="token_revoke"),
]
