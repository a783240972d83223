"""Server time of the runs history at 1,000,000 runs, the stock admin beside it, and the poll.

    python -m bench.history [--rows 1000000] [--reuse | --replace] [--requests 20]
                            [--stock-requests N] [--explain] [--metrics-only]

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
- /metrics: first the stats rollup from scratch (the stats tables emptied, then one
  `roll_up()` over all the history: `rollup_first_s`, `rollup_counted`), then a Prometheus
  scrape (bearer token, no session, the broker of REDIS_URL answering for queue depths and
  online workers) timed like the other cases; `metrics_target_met` says whether its p95 is
  within 50 ms. `--metrics-only` measures this case alone; with `--explain` every statement of
  the scrape is explained, whatever table it reads.

`--reuse` skips seeding when both tables already hold exactly N rows. Otherwise the tables
must be empty, or `--replace` given: seeding starts with TRUNCATE of the Run and TaskResult
tables, so give the bench a database of its own. The seeded rows (and the users they name,
and the bench's superuser, `bench-history-admin`, without a usable password) are kept for
re-runs.
`--explain` also prints each case's SQL with its EXPLAIN (ANALYZE, BUFFERS) plan (PostgreSQL),
as `#` lines.

Targets (from the issues): every runs-list case p95 <= 50 ms; poll p50 <= 10 ms; the /metrics
scrape p95 <= 50 ms. `targets_met` is yes only when all three hold.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from typing import Any

from .common import database_label, emit, is_postgresql, migrate, prepare_env, setup_django
from .history_cases import bench_settings, build_cases, metrics_case
from .history_measure import SqlTimer, explain, measure, report
from .seed import newest_queued_at, seed

DEFAULT_ROWS = 1_000_000
DEFAULT_ROWS_SQLITE = 100_000
TARGET_LIST_P95_MS = 50.0
TARGET_POLL_P50_MS = 10.0
TARGET_METRICS_P95_MS = 50.0
BENCH_ADMIN = "bench-history-admin"


def prepare() -> None:
    """The environment, before Django reads its settings."""
    os.environ["DEBUG"] = "false"  # DEBUG on keeps every query in memory: not a production run
    os.environ["HTTPS"] = "false"  # the test client speaks plain HTTP
    hosts = os.environ.get("ALLOWED_HOSTS", "").strip() or "localhost,127.0.0.1,[::1]"
    os.environ["ALLOWED_HOSTS"] = f"{hosts},testserver"
    # demo.progress and demo.flaky are in the seeded mix; the job filter offers registered jobs.
    os.environ["TASKDECK_DEMO_JOBS"] = "true"
    prepare_env(debug_default="false")


# --- data ---------------------------------------------------------------------------------


def table_rows() -> tuple[int, int]:
    from django_celery_results.models import TaskResult

    from tasks_app.models import Run

    return Run.objects.count(), TaskResult.objects.count()


def ensure_data(rows: int, *, reuse: bool, replace: bool) -> float | None:
    """Seed unless reusing; returns the seeding time, None when reused."""
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


def first_rollup() -> tuple[int, float]:
    """The stats rollup from nothing: how many runs it counted, in how many seconds."""
    from django.db import transaction

    from tasks_app.metrics.rollup import roll_up
    from tasks_app.models import JobHourStats, JobTotals, RollupMark

    with transaction.atomic():
        JobHourStats.objects.all().delete()
        JobTotals.objects.all().delete()
        RollupMark.objects.all().delete()
    started = time.perf_counter()
    counted = roll_up()
    return counted, time.perf_counter() - started


def bench_metrics(timer: SqlTimer, requests: int, *, show_plans: bool) -> float:
    """The first rollup, then the scrape as Prometheus sends it; returns the scrape's p95."""
    from django.test import Client, override_settings

    counted, seconds = first_rollup()
    emit("rollup_counted", counted)
    emit("rollup_first_s", round(seconds, 2))
    case, token = metrics_case()
    with override_settings(TASKDECK_METRICS_TOKEN=token):
        scraper = Client()  # no session: Prometheus has none
        if show_plans:
            explain(scraper, case, timer, tables=("tasks_app_",))
        measured = measure(scraper, case, timer, requests)
    report(measured)
    emit("metrics_target_p95_ms", TARGET_METRICS_P95_MS)
    emit("metrics_target_met", "yes" if measured.p95 <= TARGET_METRICS_P95_MS else "no")
    return measured.p95


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
    parser.add_argument(
        "--metrics-only", action="store_true", help="only the rollup and the /metrics scrape"
    )
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

    newest = newest_queued_at()
    assert newest is not None
    stock_requests: int = args.stock_requests or args.requests
    timer = SqlTimer()
    worst = 0.0
    poll_p50 = math.inf
    if args.metrics_only:
        with bench_settings(), connection.execute_wrapper(timer):
            bench_metrics(timer, args.requests, show_plans=args.explain)
        return 0
    with bench_settings(), connection.execute_wrapper(timer):
        metrics_p95 = bench_metrics(timer, args.requests, show_plans=args.explain)
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
    met = (
        worst <= TARGET_LIST_P95_MS
        and poll_p50 <= TARGET_POLL_P50_MS
        and metrics_p95 <= TARGET_METRICS_P95_MS
    )
    emit("targets_met", "yes" if met else "no")
    emit("worst_p95_ms", worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
