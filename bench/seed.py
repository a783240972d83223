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

import json
import random
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DAY = 86_400.0
SPAN_DAYS = 90
SEED = 20261123

# Users who launch from the dashboard, most active first (weights).
USERS = (("alice", 40), ("bob", 25), ("carol", 20), ("dave", 10), ("erin", 5))
TOKENS = (("token:ci", 70), ("token:deploy-bot", 30))
SOURCES = (("form", 25), ("api", 20), ("schedule", 35), ("code", 15), ("retry", 5))
TEAMS = (
    ("payments", 25), ("growth", 20), ("platform", 15), ("search", 12), ("mobile", 10),
    ("data", 10), ("infra", 5), ("atlas-migration", 3),
)  # fmt: skip
WORKERS = tuple(f"celery@worker-{n}" for n in range(1, 5))

# Final states without the active share, which depends on the age of the run.
FINAL_MIX = (("SUCCESS", 90.0), ("FAILURE", 6.0), ("REVOKED", 2.0), ("LOST", 1.0))
RECENT_SECONDS = DAY  # the backlog window
ACTIVE_IF_RECENT = 0.8
ACTIVE_IF_OLDER = 0.0012
RECENT_ACTIVE_MIX = (("PENDING", 70), ("STARTED", 10), ("PROGRESS", 20))

RUN_COLUMNS = (
    "id", "task_id", "job_name", "state", "args", "params", "source", "actor_label",
    "schedule_name", "queue", "priority", "eta", "unique_key", "worker", "queued_at",
    "started_at", "finished_at", "heartbeat_at", "retries", "attempts", "requeues",
    "progress_done", "progress_total", "progress_message", "progress_at", "progress_writes",
    "log", "error", "cancel_requested_at", "cancel_requested_by", "cancel_terminate", "artifact",
    "actor_user_id", "retry_of_id", "root_id",
)  # fmt: skip
RESULT_COLUMNS = (
    "task_id", "periodic_task_name", "task_name", "task_args", "task_kwargs", "status",
    "worker", "content_type", "content_encoding", "result", "date_created", "date_started",
    "date_done", "traceback", "meta",
)  # fmt: skip
# Columns whose text may hold a tab, newline or backslash: escaped for COPY.
RUN_FREE_TEXT = frozenset(RUN_COLUMNS.index(c) for c in ("params", "error", "progress_message"))
RESULT_FREE_TEXT = frozenset(
    RESULT_COLUMNS.index(c) for c in ("task_kwargs", "result", "traceback")
)

Params = dict[str, Any]


def _pick(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    return rng.choices([name for name, _ in table], [weight for _, weight in table])[0]


def _day(rng: random.Random, now: float) -> str:
    return datetime.fromtimestamp(now - rng.randrange(1, 30) * DAY, UTC).date().isoformat()


def _email_params(rng: random.Random, now: float) -> Params:
    team = _pick(rng, TEAMS)
    return {
        "to": [f"{team}-oncall@example.com"],
        "subject": f"Weekly report for team {team}",
        "body": "",
    }


def _export_params(rng: random.Random, now: float) -> Params:
    return {
        "states": rng.choice([[], ["FAILURE"], ["FAILURE", "LOST"]]),
        "job_name": rng.choice(["", "billing.sync_invoices", "search.reindex"]),
        "since": _day(rng, now),
        "until": None,
    }


def _team_params(rng: random.Random, now: float) -> Params:
    return {"team": _pick(rng, TEAMS), "account_id": rng.randrange(10_000), "full": False}


def _digest_params(rng: random.Random, now: float) -> Params:
    return {"team": _pick(rng, TEAMS), "day": _day(rng, now)}


def _reindex_params(rng: random.Random, now: float) -> Params:
    index = rng.choice(["orders", "customers", "products"])
    return {"index": index, "team": _pick(rng, TEAMS), "batch": 500}


@dataclass(frozen=True)
class JobMix:
    name: str
    weight: float
    queue: str
    seconds: tuple[float, float]  # duration range
    schedule: str
    params: Callable[[random.Random, float], Params]
    progress: bool = False  # reports progress (done/total)
    errors: tuple[tuple[str, str], ...] = ()  # (exception type, message)
    sources: tuple[tuple[str, int], ...] = SOURCES
    results: Callable[[random.Random], Any] = field(default=lambda rng: {"ok": True})


JOBS: tuple[JobMix, ...] = (
    JobMix(
        "taskdeck.send_email", 30, "default", (0.2, 3.0), "Daily reminders", _email_params,
        errors=(("SMTPServerDisconnected", "Connection unexpectedly closed"),),
        results=lambda rng: {"sent": 1, "recipients": 1},
    ),
    JobMix(
        "billing.sync_invoices", 15, "default", (5, 120), "Hourly invoice sync", _team_params,
        errors=(("TimeoutError", "billing API did not answer within 30 s"),),
        results=lambda rng: {"invoices": rng.randrange(500)},
    ),
    JobMix(
        "demo.progress", 12, "default", (5, 60), "Demo progress", lambda rng, now: {
            "steps": rng.choice([10, 50, 100, 500]), "step_seconds": 0.1,
        }, progress=True,
        errors=(("RuntimeError", "step failed"),),
        results=lambda rng: {"steps": 100},
    ),
    JobMix(
        "reports.nightly_digest", 10, "low", (20, 600), "Nightly digest", _digest_params,
        errors=(("KeyError", "'revenue'"),),
    ),
    JobMix(
        "demo.flaky", 10, "default", (0.05, 1.0), "Demo flaky", lambda rng, now: {
            "failure_rate": rng.choice([0.1, 0.3, 0.5]),
        },
        errors=(("RuntimeError", "demo.flaky failed (failure rate 50%)."),),
        results=lambda rng: "ok",
    ),
    JobMix(
        "taskdeck.export_runs", 10, "low", (2, 300), "Weekly export", _export_params,
        progress=True, errors=(("OSError", "[Errno 28] No space left on device"),),
        results=lambda rng: {"rows": rng.randrange(100_000), "file": "runs-export.csv"},
    ),
    JobMix(
        "search.reindex", 9.6, "low", (30, 900), "Reindex search", _reindex_params,
        progress=True, errors=(("ConnectionError", "search cluster unreachable"),),
        results=lambda rng: {"documents": rng.randrange(1_000_000)},
    ),
    JobMix(
        "taskdeck.cleanup", 3, "low", (10, 300), "Taskdeck: clean up old runs",
        lambda rng, now: {"days": 30, "failed_days": 90, "batch_size": 1000},
        progress=True, sources=(("schedule", 1),),
        errors=(("OperationalError", "canceling statement due to lock timeout"),),
        results=lambda rng: {"days": 30, "failed_days": 90},
    ),
    # The rare job: filtering on it must be as fast as on a common one.
    JobMix(
        "taskdeck.ping", 0.4, "high", (0.01, 0.1), "Ping every hour", lambda rng, now: {},
        results=lambda rng: "pong",
    ),
)  # fmt: skip
RARE_JOB = "taskdeck.ping"


@dataclass
class Seeded:
    """What the measuring side needs to know about the data."""

    rows: int
    newest: datetime
    users: dict[str, int] = field(default_factory=dict)


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Generator:
    """Rows in order of `queued_at` (ids increase with time, as in a real ledger).

    `timestamp` turns a datetime into what the database reads (PostgreSQL: ISO 8601 with
    offset; SQLite: naive UTC, as Django stores it)."""

    def __init__(
        self,
        rows: int,
        *,
        now: datetime,
        first_id: int,
        users: dict[str, int],
        timestamp: Callable[[datetime], str],
    ) -> None:
        self.rows = rows
        self.now = now.timestamp()
        self.first_id = first_id
        self.users = users
        self.timestamp = timestamp
        self.rng = random.Random(SEED)  # noqa: S311 - test data, not cryptography
        self._failed: deque[tuple[int, int]] = deque(maxlen=2000)  # (id, root id)

    def __iter__(self) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...]]]:
        rng = self.rng
        n = self.rows
        start = self.now - SPAN_DAYS * DAY
        times = sorted(start + rng.random() * SPAN_DAYS * DAY for _ in range(n - 1))
        times.append(self.now)
        weights = [job.weight for job in JOBS]
        jobs = rng.choices(JOBS, weights, k=n)
        finals = rng.choices([s for s, _ in FINAL_MIX], [w for _, w in FINAL_MIX], k=n)
        for i in range(n):
            yield self.row(self.first_id + i, times[i], jobs[i], finals[i])

    def row(
        self, pk: int, queued: float, job: JobMix, final: str
    ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        rng = self.rng
        ts = self.timestamp
        age = self.now - queued
        active = rng.random() < (ACTIVE_IF_RECENT if age < RECENT_SECONDS else ACTIVE_IF_OLDER)
        if active:
            state = _pick(rng, RECENT_ACTIVE_MIX) if age < RECENT_SECONDS else "PENDING"
        else:
            state = final
        task_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        params = job.params(rng, self.now)
        source = _pick(rng, job.sources) if len(job.sources) > 1 else job.sources[0][0]
        retry_of: int | None = None
        root: int | None = None
        if source == "retry":
            if self._failed:
                retry_of, root = self._failed.pop()
            else:
                source = "form"
        schedule = job.schedule if source == "schedule" else ""
        actor_user: int | None = None
        if source in ("form", "retry"):
            label = _pick(rng, USERS)
            actor_user = self.users.get(label)
        elif source == "api":
            label = _pick(rng, TOKENS)
        elif source == "schedule":
            label = schedule
        else:
            label = "code"

        worker = rng.choice(WORKERS)
        started: float | None = queued + rng.uniform(0.02, 2.0)
        finished: float | None = None
        heartbeat: float | None = None
        low, high = job.seconds
        duration = rng.uniform(low, high)
        error = ""
        traceback: str | None = None
        result: Any = None
        status = state
        cancelled_at: float | None = None
        cancelled_by = ""
        attempts = 1
        done: int | None = None
        total: int | None = None
        message = ""
        progress_at: float | None = None
        writes = 0
        if state == "PENDING":
            started = None
            worker = ""
            attempts = 0
        elif state in ("STARTED", "PROGRESS"):
            assert started is not None
            started = min(started, self.now - 1)
            heartbeat = max(started, self.now - rng.uniform(0, 10))
            if state == "PROGRESS":
                total = rng.choice([100, 500, 1000, 10_000])
                done = rng.randrange(1, total)
                message = f"Processed {done} of {total}"
                progress_at = heartbeat
                writes = rng.randrange(1, 200)
        else:
            assert started is not None
            finished = started + duration
            heartbeat = finished
            if state == "SUCCESS":
                result = job.results(rng)
            elif state == "FAILURE":
                kind, text = rng.choice(job.errors or (("RuntimeError", "failed"),))
                error = f"{kind}: {text}"
                traceback = (
                    "Traceback (most recent call last):\n"
                    f'  File "/app/jobs/{job.name.split(".")[0]}.py", line 42, in run\n'
                    f"{kind}: {text}\n"
                )
                result = {"exc_type": kind, "exc_message": [text], "exc_module": "builtins"}
            elif state == "REVOKED":
                who = _pick(rng, USERS)
                cancelled_at = started - 0.01 if rng.random() < 0.5 else started + duration
                if cancelled_at < started:
                    started = None
                    worker = ""
                    attempts = 0
                    finished = cancelled_at + 0.5
                    heartbeat = None
                error = f"Cancelled by {who}."
                cancelled_by = who
                result = {"exc_type": "TaskRevokedError", "exc_message": [error],
                          "exc_module": "celery.exceptions"}  # fmt: skip
            else:  # LOST: the reaper's verdict a minute after the last heartbeat
                heartbeat = started + duration / 2
                finished = heartbeat + 60 + rng.uniform(0, 30)
                error = f"Worker lost: no heartbeat for over 60 s from worker {worker}."
                status = "FAILURE"
                result = {"exc_type": "WorkerLostError", "exc_message": [error],
                          "exc_module": "billiard.exceptions"}  # fmt: skip
            if job.progress and state != "REVOKED" and started is not None:
                total = rng.choice([100, 500, 1000, 10_000])
                done = total if state == "SUCCESS" else rng.randrange(total)
                message = f"Processed {done} of {total}"
                progress_at = finished if state == "SUCCESS" else heartbeat
                writes = rng.randrange(1, 200)
            if state in ("FAILURE", "LOST"):
                self._failed.append((pk, root or pk))

        params_json = json.dumps(params)
        run = (
            pk, task_id, job.name, state, "[]", params_json, source, label,
            schedule, job.queue, None, None, None, worker, ts(_ts(queued)),
            _opt(ts, started), _opt(ts, finished), _opt(ts, heartbeat), 0, attempts, 0,
            done, total, message, _opt(ts, progress_at), writes,
            "[]", error, _opt(ts, cancelled_at), cancelled_by, False, "",
            actor_user, retry_of, root,
        )  # fmt: skip
        last = finished or progress_at or heartbeat or started or queued
        task_result = (
            task_id, schedule or None, job.name, "[]", params_json, status,
            worker or None, "application/json", "utf-8", json.dumps(result),
            ts(_ts(started or queued)), _opt(ts, started), ts(_ts(last)), traceback,
            '{"children": []}',
        )  # fmt: skip
        return run, task_result


def _opt(ts: Callable[[datetime], str], seconds: float | None) -> str | None:
    return None if seconds is None else ts(_ts(seconds))


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
        cursor.execute(f"TRUNCATE {run_table}, {result_table} RESTART IDENTITY")
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
