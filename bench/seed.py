"""Seeding for `python -m bench.history`: N runs and their N TaskResult rows, a realistic mix.

The rows are generated in Python with a fixed random seed (the same N gives the same data)
and written with COPY on PostgreSQL (psycopg 3, text format, in the transaction that empties
the tables, `FREEZE` so no vacuum is needed afterwards; GIN indexes, such as the parameters'
trigram index, are dropped before and built again after), or with `executemany` in batches on
SQLite. Every Run row has the TaskResult row a worker would have left: the same task id, the
job as `task_name`, and the status the backend maps to (SUCCESS, FAILURE, REVOKED as they are;
LOST runs are FAILURE with WorkerLostError; active runs carry their current state).

The mix, over 90 days of `queued_at` (newest row = the moment of seeding):
- 9 jobs: the registered taskdeck.send_email, taskdeck.export_runs, taskdeck.cleanup,
  demo.progress, demo.flaky and the rare taskdeck.ping (0.4% of rows), plus made-up
  billing.sync_invoices, reports.nightly_digest and search.reindex; each with its own queue,
  durations and parameters (several carry a `team`).
- States: ~90% SUCCESS, 6% FAILURE, 2% REVOKED, 1% LOST, ~1% active. Active runs are mostly
  recent (a backlog in the last day: queued, started, running with progress); a few older ones
  still wait in a queue.
- Sources: form 25%, api 20%, schedule 35%, code 15%, retry 5% (retries point at an earlier
  failed run: `retry_of` and `root`). `actor_label` is the user (form, retry), `token:ci` or
  `token:deploy-bot` (api), the schedule's name (schedule) or `code`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from .seed_mix import USERS
from .seed_rows import (
    RESULT_COLUMNS,
    RESULT_FREE_TEXT,
    RUN_COLUMNS,
    RUN_FREE_TEXT,
    Generator,
    Seeded,
)

# --- writing ------------------------------------------------------------------------------

_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_line(values: tuple[Any, ...], free_text: frozenset[int]) -> str:
    """One line of COPY's text format. Only `free_text` columns can hold characters to escape."""
    out = []
    for index, value in enumerate(values):
        if value is None:
            out.append("\\N")
        elif index in free_text:
            out.append(str(value).translate(_COPY_ESCAPES))
        else:
            out.append(str(value))
    return "\t".join(out) + "\n"


def pg_timestamp(value: datetime) -> str:
    return value.isoformat(sep=" ")


def sqlite_timestamp(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(sep=" ")


def ensure_users() -> dict[str, int]:
    """The dashboard users the seeded runs name (created without a usable password)."""
    from django.contrib.auth.models import User

    ids = {}
    for name, _ in USERS:
        user, created = User.objects.get_or_create(username=name, defaults={"is_staff": True})
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        ids[name] = user.pk
    return ids


def seed(rows: int, *, chunk: int = 50_000) -> Seeded:
    """Empty both tables and write `rows` runs and results. Returns what was written."""
    from django.db import connection

    from tasks_app.models import Run

    users = ensure_users()
    now = datetime.now(UTC)
    run_table = Run._meta.db_table
    result_table = "django_celery_results_taskresult"
    if connection.vendor == "postgresql":
        generator = Generator(rows, now=now, first_id=1, users=users, timestamp=pg_timestamp)
        _seed_postgresql(generator, run_table, result_table, chunk)
    else:
        generator = Generator(rows, now=now, first_id=1, users=users, timestamp=sqlite_timestamp)
        _seed_other(generator, run_table, result_table, chunk)
    return Seeded(rows=rows, newest=now, users=users)


def _seed_postgresql(generator: Generator, run_table: str, result_table: str, chunk: int) -> None:
    from django.db import connection, transaction

    run_copy = f"COPY {run_table} ({', '.join(RUN_COLUMNS)}) FROM STDIN WITH (FREEZE)"
    result_copy = f"COPY {result_table} ({', '.join(RESULT_COLUMNS)}) FROM STDIN WITH (FREEZE)"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        # Generated rows are consistent by construction: skip the per-row foreign key
        # triggers when allowed (a superuser); otherwise they run, only slower.
        cursor.execute(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
        )
        superuser = bool(cursor.fetchone()[0])
        if superuser:
            cursor.execute("SET LOCAL session_replication_role = replica")
        # TRUNCATE in this transaction lets COPY FREEZE write rows already frozen and visible.
        # CASCADE: alerts point at runs; a bench database's alerts go with them.
        cursor.execute(f"TRUNCATE {run_table}, {result_table} RESTART IDENTITY CASCADE")
        # GIN indexes (the parameters' trigram index) are built once after the COPY, as a
        # restore does: far faster than a million incremental GIN inserts.
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN (%s, %s) "
            "AND indexdef LIKE %s",
            [run_table, result_table, "% USING gin %"],
        )
        gin_indexes: list[tuple[str, str]] = cursor.fetchall()
        for name, _ in gin_indexes:
            cursor.execute(f'DROP INDEX "{name}"')
        raw = cursor.connection  # psycopg's connection, for COPY
        runs: list[str] = []
        results: list[str] = []

        def flush() -> None:
            with raw.cursor() as pg:
                with pg.copy(run_copy) as copy:
                    copy.write("".join(runs))
                with pg.copy(result_copy) as copy:
                    copy.write("".join(results))
            runs.clear()
            results.clear()

        for run, result in generator:
            runs.append(copy_line(run, RUN_FREE_TEXT))
            results.append(copy_line(result, RESULT_FREE_TEXT))
            if len(runs) >= chunk:
                flush()
        if runs:
            flush()
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _, definition in gin_indexes:
            cursor.execute(definition)
        sequence = f"SELECT setval(pg_get_serial_sequence('{run_table}', 'id'), max(id))"
        cursor.execute(f"{sequence} FROM {run_table}")
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {run_table}")
        cursor.execute(f"ANALYZE {result_table}")


def _seed_other(generator: Generator, run_table: str, result_table: str, chunk: int) -> None:
    """SQLite (or any other database): plain batched INSERTs, in one transaction."""
    from django.db import connection, transaction

    def insert(table: str, columns: Sequence[str]) -> str:
        marks = ", ".join(["%s"] * len(columns))
        return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608

    run_insert = insert(run_table, RUN_COLUMNS)
    result_insert = insert(result_table, RESULT_COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor:
        for table in (run_table, result_table):
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - the models' tables
        runs: list[tuple[Any, ...]] = []
        results: list[tuple[Any, ...]] = []
        for run, result in generator:
            runs.append(run)
            results.append(result)
            if len(runs) >= chunk:
                cursor.executemany(run_insert, runs)
                cursor.executemany(result_insert, results)
                runs.clear()
                results.clear()
        if runs:
            cursor.executemany(run_insert, runs)
            cursor.executemany(result_insert, results)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def newest_queued_at() -> datetime | None:
    from django.db.models import Max

    from tasks_app.models import Run

    value: datetime | None = Run.objects.aggregate(newest=Max("queued_at"))["newest"]
    return value


def previous_day(moment: datetime, days: int) -> tuple[datetime, datetime]:
    """A one-day window `days` before `moment`, on whole hours."""
    end = (moment - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    return end - timedelta(days=1), end
