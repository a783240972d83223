"""Taskdeck's pages; the host project includes these under a prefix of its choice."""

from django.urls import path

from .views import audit, jobs, overview, runs, workers

app_name = "tasks_app"

urlpatterns = [
    path("", overview.overview, name="overview"),
    path("jobs/", jobs.jobs, name="jobs"),
    path("jobs/<str:name>/", jobs.launch, name="launch"),
    path("runs/", runs.runs, name="runs"),
    path("runs/bulk/", runs.runs_bulk, name="runs_bulk"),
    path("runs/retry-failed/", runs.runs_retry_failed, name="runs_retry_failed"),
    path("runs/<str:task_id>/", runs.run_detail, name="run"),
    path("runs/<str:task_id>/retry/", runs.run_retry, name="run_retry"),
    path("runs/<str:task_id>/cancel/", runs.run_cancel, name="run_cancel"),
    path("runs/<str:task_id>/file/", runs.run_artifact, name="run_artifact"),
    path("workers/", workers.workers, name="workers"),
    path("workers/panel/", workers.workers_panel, name="workers_panel"),
    path("audit/", audit.audit, name="audit"),
]
