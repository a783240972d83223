"""The cases `python -m bench.history` measures: the runs list with each filter and search, the
admin changelists (ours and the stock one beside it) and the live poll."""

from __future__ import annotations

import secrets
import sys
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .seed import previous_day
from .seed_mix import RARE_JOB

HTMX_LIVE = {"HX-Request": "true", "HX-Target": "live"}

# The values the filter cases use; they exist in the seeded data (bench/seed.py).
COMMON_JOB = "taskdeck.send_email"
USER = "erin"  # the least active user: ~1.5% of the runs
SCHEDULE = "Nightly digest"  # ~3.5% of the runs
RARE_SCHEDULE = "Ping every hour"  # ~0.14%
TEAM = "atlas-migration"  # the rarest team: ~2% of the runs carry it in their parameters
COMMON_TEAM = "payments"  # the commonest: ~25% of the runs that name a team
NO_SUCH_TEXT = "xylophone"  # in no run's parameters
SCATTERED_TEXT = 'growth", "full'  # both words are common; "full" always comes before "team"


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    # Bytes the response must contain (a check that the case shows what it should).
    expect: bytes = b""
    runs_list: bool = False  # counts for worst_p95_ms
    informational: bool = False


def build_cases(newest: datetime) -> tuple[list[Case], Case]:
    """The runs-list and admin cases, and the poll; their values are taken from the data."""
    from django.urls import reverse
    from django.utils import timezone

    from tasks_app.models import Run, RunState
    from tasks_app.selectors import encode_cursor

    def run_before(days: float) -> Run:
        run = (
            Run.objects.filter(queued_at__lte=newest - timedelta(days=days))
            .order_by("-queued_at", "-id")
            .first()
        )
        if run is None:
            sys.exit(f"No run queued {days} days before the newest: is the data seeded?")
        return run

    def local(moment: datetime) -> str:
        return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M:%S")

    deep = run_before(85)
    account = (
        Run.objects.filter(job_name="billing.sync_invoices")
        .filter(queued_at__lte=newest - timedelta(days=30))
        .order_by("-queued_at", "-id")
        .values_list("params", flat=True)
        .first()
    )
    if not account or "account_id" not in account:
        sys.exit("No billing.sync_invoices run with an account_id in the data.")
    rare_account = str(account["account_id"])  # 0-9999: a handful of runs
    # The same as it reads in the JSON text: every word but the number is in most runs.
    account_fragment = f'"account_id": {rare_account}}}'
    wanted = run_before(80).task_id
    prefix = run_before(60).task_id[:8]
    since, until = previous_day(newest, 40)
    window = {"since": local(since), "until": local(until)}
    runs = reverse("tasks_app:runs")
    row = b'name="run" value="'  # each row's checkbox: the page lists runs

    def listing(
        name: str, params: Mapping[str, str], expect: bytes, *, informational: bool = False
    ) -> Case:
        return Case(name, runs, params, {}, expect, not informational, informational)

    cases = [
        listing("runs_first_page", {}, row),
        listing("runs_deep_cursor", {"cursor": encode_cursor(deep)}, row),
        listing("runs_state_failure", {"state": RunState.FAILURE}, b"state-failure"),
        listing("runs_state_lost", {"state": RunState.LOST}, b"state-lost"),
        listing("runs_job_common", {"job": COMMON_JOB}, f"<td>{COMMON_JOB}<".encode()),
        listing("runs_job_rare", {"job": RARE_JOB}, f"<td>{RARE_JOB}<".encode()),
        listing("runs_source_schedule", {"source": "schedule"}, row),
        listing("runs_launched_by", {"launched_by": USER}, f"<td>{USER}<".encode()),
        listing("runs_schedule", {"schedule": SCHEDULE}, f"<td>{SCHEDULE}<".encode()),
        # Free-text fields: a rare value, and one matching nothing (a typo) must not scan.
        listing(
            "runs_schedule_rare", {"schedule": RARE_SCHEDULE}, f"<td>{RARE_SCHEDULE}<".encode()
        ),
        listing("runs_launched_by_unknown", {"launched_by": "nobody"}, b"No runs match."),
        listing("runs_time_range", window, row),
        listing(
            "runs_combined",
            {"state": RunState.FAILURE, "job": COMMON_JOB, **window},
            b"state-failure",
        ),
        # The row shows the first 12 characters of the task id (truncatechars:13).
        listing("runs_search_task_id", {"q": wanted}, wanted[:12].encode()),
        listing("runs_search_task_id_prefix", {"q": prefix}, prefix.encode()),
        # Text in the parameters (the trigram index, migration 0007, on PostgreSQL): a team
        # in ~2% of runs, a common one (~25%), one account (a handful of runs), a word in no
        # run (must not read the table).
        listing("runs_search_params", {"q": TEAM}, TEAM.encode()),
        listing("runs_search_params_common", {"q": COMMON_TEAM}, COMMON_TEAM.encode()),
        listing("runs_search_params_rare", {"q": rare_account}, row),
        listing("runs_search_params_none", {"q": NO_SUCH_TEXT}, b"No runs match."),
        # Informational: the account as a JSON fragment (the index intersects the long lists
        # of its common trigrams: "account", "id"); words that each occur in many runs but
        # never in this order (the index hands over every run holding all of them to check).
        listing("runs_search_params_fragment", {"q": account_fragment}, row,
                informational=True),
        listing("runs_search_params_scattered", {"q": SCATTERED_TEXT}, b"No runs match.",
                informational=True),
    ]  # fmt: skip
    stock = "/stock-admin/django_celery_results/taskresult/"
    ours = reverse("admin:django_celery_results_taskresult_changelist")
    run_admin = reverse("admin:tasks_app_run_changelist")
    cases += [
        Case("admin_stock_changelist", stock, expect=b"result_list", informational=True),
        Case("admin_stock_search", stock, {"q": wanted}, expect=wanted.encode(),
             informational=True),
        Case("admin_taskresult_changelist", ours, expect=b"result_list", informational=True),
        Case("admin_taskresult_search", ours, {"q": wanted}, expect=wanted.encode(),
             informational=True),
        Case("admin_run_changelist", run_admin, expect=b"result_list", informational=True),
        Case("admin_run_search", run_admin, {"q": wanted}, expect=wanted.encode(),
             informational=True),
    ]  # fmt: skip
    running = Run.objects.filter(state=RunState.PROGRESS).order_by("-queued_at", "-id").first()
    if running is None:
        sys.exit("No running (PROGRESS) run in the data.")
    poll = Case(
        "poll", reverse("tasks_app:run", args=[running.task_id]), headers=HTMX_LIVE,
        expect=b'id="live"',
    )  # fmt: skip
    return cases, poll


def metrics_case() -> tuple[Case, str]:
    """The /metrics scrape with a bearer token (the caller turns the endpoint on with it)."""
    token = secrets.token_urlsafe(24)
    bearer = {"Authorization": f"Bearer {token}"}
    return Case("metrics_scrape", "/metrics", headers=bearer, expect=b"taskdeck_runs_total{"), token


# --- the stock admin beside Taskdeck's ------------------------------------------------------


def bench_urlconf() -> types.ModuleType:
    """The project's URLs plus /stock-admin/: an admin site with the same model admins as
    /admin/, except TaskResult's, which is django-celery-results' own."""
    from django.contrib import admin
    from django.urls import path
    from django_celery_results.admin import TaskResultAdmin
    from django_celery_results.models import TaskResult

    from dashboard import urls

    stock = admin.AdminSite(name="stock_admin")
    for model, model_admin in admin.site._registry.items():
        if model is not TaskResult:
            stock.register(model, type(model_admin))
    stock.register(TaskResult, TaskResultAdmin)
    module = types.ModuleType("bench_history_urls")
    module.urlpatterns = [path("stock-admin/", stock.urls), *urls.urlpatterns]  # type: ignore[attr-defined]
    return module


@contextmanager
def bench_settings() -> Iterator[None]:
    """Plain static files (production's manifest needs `collectstatic`; the lookup costs the
    same) and the URLs with the stock admin."""
    from django.test import override_settings

    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with override_settings(STORAGES=storages, ROOT_URLCONF=bench_urlconf()):
        yield
