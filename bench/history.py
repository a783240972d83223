"""Server time of the runs history at 1,000,000 runs, the stock admin beside it, and the poll.

    python -m bench.history [--rows 1000000] [--reuse | --replace] [--requests 20]
                            [--stock-requests N] [--explain]

Not a test. Seeds N runs and their N TaskResult rows into the database of DATABASE_URL
(bench/seed.py: COPY on PostgreSQL; on SQLite batched INSERTs and 100,000 rows by default),
then measures in this process with Django's test Client, signed in as a superuser, DEBUG off
(so no query is kept in memory; a throw-away SECRET_KEY), HTTPS off (no redirect): the server
time of a request is the wall time of `client.get()`, through every middleware, the view and
the template. Each case is requested once to warm up, then `--requests` times; p50 and p95
(nearest rank: the 19th of 20) are printed, and the SQL share of each request (the time spent
in `cursor.execute`, through a `connection.execute_wrapper`).

Cases:
- the runs list (`/runs/`): first page; a cursor page ~85 days deep; each filter alone (state
  FAILURE, state LOST, a common job, the rare job (0.4% of runs), source schedule, launched by
  a user (~1.5%), a schedule (~3.5%), a one-day window 40 days ago); the free-text filters
  with a rare value (a schedule of ~0.14%) and with one matching nothing (launched by
  "nobody"); filters combined (FAILURE + a job + the window); the free-text search on a full
  task id and on its first 8 characters; the free-text search in the parameters (PostgreSQL:
  the trigram index of migration 0007) for a team in ~2% of the runs, a common team, one
  account number (a few runs) and a word in none. `worst_p95_ms` (the last line) is the
  highest p95 of these. Two harder searches are printed too, marked informational: the account
  as its JSON fragment (`"account_id": 1234}`: common trigrams to intersect) and words that
  are common but never in the given order (every run holding all of them is checked).
- django-celery-results' TaskResult admin changelist and its search for a task id, twice:
  `admin_stock_*` is the stock `TaskResultAdmin` (registered on a second admin site with every
  other model admin, mounted at /stock-admin/), `admin_taskresult_*` is what /admin/ serves
  (Taskdeck's TaskResultAdmin, tasks_app/admin.py). Then the Run admin changelist and search.
  Informational.
- the live progress poll: GET /runs/<task id>/ with `HX-Request: true` and `HX-Target: live`
  for a running (PROGRESS) run, as htmx sends it every second.

`--reuse` skips seeding when both tables already hold exactly N rows. Otherwise the tables
must be empty, or `--replace` given: seeding starts with TRUNCATE of the Run and TaskResult
tables, so give the bench a database of its own. The seeded rows (and the users they name,
and the bench's superuser, `bench-history-admin`, without a usable password) are kept for
re-runs.
`--explain` also prints each case's SQL with its EXPLAIN (ANALYZE, BUFFERS) plan (PostgreSQL),
as `#` lines.

Targets (from the issue): every runs-list case p95 <= 50 ms; poll p50 <= 10 ms.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .common import database_label, emit, is_postgresql, median, migrate, prepare_env, setup_django

DEFAULT_ROWS = 1_000_000
DEFAULT_ROWS_SQLITE = 100_000
TARGET_LIST_P95_MS = 50.0
TARGET_POLL_P50_MS = 10.0
BENCH_ADMIN = "bench-history-admin"
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


def prepare() -> None:
    """The environment, before Django reads its settings."""
    os.environ["DEBUG"] = "false"  # DEBUG on keeps every query in memory: not a production run
    os.environ["HTTPS"] = "false"  # the test client speaks plain HTTP
    hosts = os.environ.get("ALLOWED_HOSTS", "").strip() or "localhost,127.0.0.1,[::1]"
    os.environ["ALLOWED_HOSTS"] = f"{hosts},testserver"
    # demo.progress and demo.flaky are in the seeded mix; the job filter offers registered jobs.
    os.environ["TASKDECK_DEMO_JOBS"] = "true"
    prepare_env(debug_default="false")


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


@dataclass(frozen=True)
class Measured:
    case: Case
    total_ms: list[float]
    sql_ms: list[float]
    queries: int

    @property
    def p50(self) -> float:
        return median(self.total_ms)

    @property
    def p95(self) -> float:
        return percentile(self.total_ms, 95)

    @property
    def sql_p50(self) -> float:
        return median(self.sql_ms)


def percentile(values: list[float], pct: float) -> float:
    """Nearest rank: the smallest value with at least `pct`% of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


class SqlTimer:
    """A `connection.execute_wrapper`: adds up the time spent executing SQL (fetching
    included: psycopg and sqlite3 fetch the whole result here) and can keep the statements."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.count = 0
        self.kept: list[tuple[str, Any, float]] | None = None

    def reset(self, *, keep: bool = False) -> None:
        self.seconds = 0.0
        self.count = 0
        self.kept = [] if keep else None

    def __call__(
        self,
        execute: Callable[..., Any],
        sql: str,
        params: Any,
        many: bool,
        context: Mapping[str, Any],
    ) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = time.perf_counter() - started
            self.seconds += elapsed
            self.count += 1
            if self.kept is not None:
                self.kept.append((sql, params, elapsed))


# --- data ---------------------------------------------------------------------------------


def table_rows() -> tuple[int, int]:
    from django_celery_results.models import TaskResult

    from tasks_app.models import Run

    return Run.objects.count(), TaskResult.objects.count()


def ensure_data(rows: int, *, reuse: bool, replace: bool) -> float | None:
    """Seed unless reusing; returns the seeding time, None when reused."""
    from .seed import seed

    runs, results = table_rows()
    if reuse and runs == rows and results == rows:
        return None
    if (runs or results) and not replace:
        sys.exit(
            f"The database holds {runs} runs and {results} task results. Use --reuse to "
            f"measure them (needs exactly {rows} of each) or --replace to empty both tables "
            "and seed again (give the bench a database of its own)."
        )
    started = time.perf_counter()
    seed(rows)
    return time.perf_counter() - started


def admin_client() -> Any:
    from django.contrib.auth.models import User
    from django.test import Client

    user = User.objects.filter(username=BENCH_ADMIN).first()
    if user is None:
        user = User.objects.create_superuser(BENCH_ADMIN, email="", password=None)
    client = Client()
    client.force_login(user)
    return client


def build_cases(newest: datetime) -> tuple[list[Case], Case]:
    """The runs-list and admin cases, and the poll; their values are taken from the data."""
    from django.urls import reverse
    from django.utils import timezone

    from tasks_app.models import Run, RunState
    from tasks_app.selectors import encode_cursor

    from .seed import RARE_JOB, previous_day

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


# --- measuring ----------------------------------------------------------------------------


def request(client: Any, case: Case) -> Any:
    response = client.get(case.path, dict(case.params), headers=dict(case.headers))
    if response.status_code != 200:
        sys.exit(f"{case.name}: HTTP {response.status_code} for {case.path} {dict(case.params)}")
    if case.expect and case.expect not in response.content:
        sys.exit(f"{case.name}: the page lacks {case.expect!r}: {case.path} {dict(case.params)}")
    return response


def measure(client: Any, case: Case, timer: SqlTimer, requests: int) -> Measured:
    request(client, case)  # warm-up
    total: list[float] = []
    sql: list[float] = []
    for _ in range(requests):
        timer.reset()
        started = time.perf_counter()
        request(client, case)
        total.append((time.perf_counter() - started) * 1000)
        sql.append(timer.seconds * 1000)
    return Measured(case, total, sql, timer.count)


def explain(client: Any, case: Case, timer: SqlTimer) -> None:
    """Each statement of one request of the case, with its plan (PostgreSQL)."""
    from django.db import connection

    timer.reset(keep=True)
    request(client, case)
    kept = timer.kept or []
    timer.reset()
    print(f"# --- {case.name}: {len(kept)} statements", flush=True)
    for sql, params, seconds in kept:
        print(f"# [{seconds * 1000:.2f} ms] {sql}  -- {params!r}", flush=True)
        if not is_postgresql() or not sql.lstrip().upper().startswith("SELECT"):
            continue
        if "tasks_app_run" not in sql and "django_celery_results_taskresult" not in sql:
            continue
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            for (line,) in cursor.fetchall():
                print(f"#     {line}", flush=True)


def report(measured: Measured) -> None:
    name = measured.case.name
    emit(f"{name}_p50_ms", measured.p50)
    emit(f"{name}_p95_ms", measured.p95)
    emit(f"{name}_sql_p50_ms", measured.sql_p50)
    emit(f"{name}_queries", measured.queries)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.history", description=__doc__)
    parser.add_argument("--rows", type=int, default=None, help="runs to seed (default 1,000,000)")
    parser.add_argument("--reuse", action="store_true", help="keep the data if it has N rows")
    parser.add_argument("--replace", action="store_true", help="empty the tables and seed")
    parser.add_argument("--requests", type=int, default=20, help="timed requests per case")
    parser.add_argument(
        "--stock-requests", type=int, default=None, help="timed requests per stock admin case"
    )
    parser.add_argument("--explain", action="store_true", help="print every case's SQL plans")
    args = parser.parse_args(argv)

    prepare()
    setup_django()
    migrate()
    from django.db import connection

    emit("database", database_label())
    postgresql = is_postgresql()
    rows: int = args.rows or (DEFAULT_ROWS if postgresql else DEFAULT_ROWS_SQLITE)
    if not postgresql and args.rows is None:
        emit("note", f"not PostgreSQL: {rows} rows by default (INSERTs instead of COPY)")
    seconds = ensure_data(rows, reuse=args.reuse, replace=args.replace)
    runs, results = table_rows()
    emit("rows", runs)
    emit("taskresult_rows", results)
    emit("seed_s", "reused" if seconds is None else round(seconds, 1))

    from .seed import newest_queued_at

    newest = newest_queued_at()
    assert newest is not None
    stock_requests: int = args.stock_requests or args.requests
    timer = SqlTimer()
    worst = 0.0
    poll_p50 = math.inf
    with bench_settings(), connection.execute_wrapper(timer):
        client = admin_client()
        cases, poll = build_cases(newest)
        for case in [*cases, poll]:
            if args.explain:
                explain(client, case, timer)
            n = stock_requests if case.name.startswith("admin_stock") else args.requests
            measured = measure(client, case, timer, n)
            report(measured)
            if case.runs_list:
                worst = max(worst, measured.p95)
            if case is poll:
                poll_p50 = measured.p50
        client.logout()
    emit("runs_list_target_p95_ms", TARGET_LIST_P95_MS)
    emit("poll_target_p50_ms", TARGET_POLL_P50_MS)
    emit("targets_met", "yes" if worst <= TARGET_LIST_P95_MS and poll_p50 <= TARGET_POLL_P50_MS
         else "no")  # fmt: skip
    emit("worst_p95_ms", worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
