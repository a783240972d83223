"""The result backend: django-celery-results' DatabaseBackend, with the run ledger moved in the
same transaction as TaskResult.

Set `CELERY_RESULT_BACKEND = "tasks_app.worker.backend:LedgerBackend"`. Each state a worker reports
goes through `lifecycle` first; only an accepted transition is written to TaskResult, so neither
table moves backwards (a late STARTED never overwrites SUCCESS). TaskResult is written with one
upsert instead of the stock get_or_create + save, and sensitive parameters are masked in it.
"""

from __future__ import annotations

import functools
import json
import threading
from types import SimpleNamespace
from typing import Any

import psycopg
from celery import current_app, states
from django.db import InterfaceError, OperationalError, ProgrammingError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.utils import timezone
from django_celery_results.backends.database import DatabaseBackend
from django_celery_results.models import TaskResult

from ..alerts import evaluate as alerts
from ..jobs.registry import masked_params
from ..models import Run, RunSource, RunState
from . import lifecycle
from .db import drop_if_broken

# Worker events the one-statement path handles; anything unusual takes the ORM path.
FAST_EVENTS = {
    states.STARTED: RunState.STARTED,
    states.RETRY: RunState.RETRY,
    states.SUCCESS: RunState.SUCCESS,
    states.FAILURE: RunState.FAILURE,
    states.REVOKED: RunState.REVOKED,
}
TASK_RESULT_COLUMNS = (
    "task_id", "status", "result", "traceback", "meta", "content_type", "content_encoding",
    "task_name", "task_args", "task_kwargs", "periodic_task_name", "worker", "date_done",
)  # fmt: skip


class StartOutcomes(threading.local):
    """The STARTED verdict, from the backend to the task's `__call__`, in the same thread.

    Celery's tracer stores STARTED through `backend.store_result()` just before it calls the
    task, and `store_result` returns the result it was given, not what the backend decided
    (it also owns the retry on a dropped connection, CELERY_RESULT_BACKEND_ALWAYS_RETRY). So
    the verdict (start, or do not run: cancelled while queued, a duplicate delivery) cannot
    come back as a return value; the backend leaves it here keyed by task id and `__call__`
    takes it right after, in the same thread and the same trace. A task with no verdict (its
    STARTED was not stored, e.g. not tracked) runs as before.
    """

    def __init__(self) -> None:
        self.by_task_id: dict[str, lifecycle.StartOutcome] = {}

    def record(self, task_id: str, outcome: lifecycle.StartOutcome) -> None:
        self.by_task_id[task_id] = outcome

    def take(self, task_id: str) -> lifecycle.StartOutcome:
        return self.by_task_id.pop(task_id, lifecycle.StartOutcome.STARTED)


start_outcomes = StartOutcomes()

# psycopg prepares a statement asked to be prepared only on a connection with a threshold;
# Django leaves it unset (no automatic preparing). This one never prepares by itself either.
ONLY_WHEN_ASKED = 2**31
# What a connection pooler that does not keep prepared statements per client answers.
PREPARED_STATEMENT_LOST = (
    psycopg.errors.InvalidSqlStatementName,
    psycopg.errors.DuplicatePreparedStatement,
)


class StoreCursor(psycopg.Cursor[Any]):
    """psycopg's cursor (parameters bound on the server) that prepares every statement it
    runs, or none (`prepare`): the result backend's two, run thousands of times on a worker's
    long-lived connection, are then parsed and planned once per connection, not per store."""

    prepare = True

    def execute(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("prepare", self.prepare)
        return super().execute(*args, **kwargs)


class LedgerBackend(DatabaseBackend):
    # False once the database turned out not to keep prepared statements (a pooler between).
    prepare_statements = True

    def exception_safe_to_retry(self, exc: Exception) -> bool:
        """With CELERY_RESULT_BACKEND_ALWAYS_RETRY, Celery retries storing a state when this
        says yes. django-celery-results says yes to InterfaceError only, but psycopg 3 reports
        a connection the server terminated as OperationalError ("the connection is closed"),
        and the result would be lost: retry on a new connection whenever the old one is
        broken. Every store is a conditional UPDATE plus an upsert, so a retry is harmless."""
        if isinstance(exc, OperationalError | InterfaceError) and drop_if_broken():
            return True
        return bool(super().exception_safe_to_retry(exc))

    def _store_result(
        self,
        task_id: str,
        result: Any,
        status: str,
        traceback: str | None = None,
        request: Any = None,
        using: str | None = None,
    ) -> Any:
        if self._store_in_one_go(task_id, result, status, traceback, request, using):
            return result
        with transaction.atomic(using=using):
            stored = self._move_run(task_id, status, result, traceback, request)
            if stored == states.REVOKED and status == states.STARTED:
                result = {
                    "exc_type": "TaskRevokedError",
                    "exc_message": ["Cancelled before it started."],
                    "exc_module": "celery.exceptions",
                }
            if stored:
                self._upsert_task_result(task_id, result, stored, traceback, request, using)
        return result

    def _store_in_one_go(
        self,
        task_id: str,
        result: Any,
        status: str,
        traceback: str | None,
        request: Any,
        using: str | None,
    ) -> bool:
        """The common case in as few round trips as the database allows: on PostgreSQL one
        statement (UPDATE the run ... RETURNING, feeding the TaskResult upsert); elsewhere both
        statements in one transaction. False when the run did not move (missing, final,
        cancelled, an older attempt): the ORM path then works out why."""
        event = FAST_EVENTS.get(status)
        if event is None:
            return False
        connection = connections[using or "default"]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        params = {
            "task_id": task_id,
            "state": event.value,
            "now": now,
            "retries": int(getattr(request, "retries", 0) or 0),
            "worker": str(getattr(request, "hostname", "") or ""),
            "error": _error(result, traceback)[: lifecycle.ERROR_CHARS_KEPT],
            **self._task_result_values(task_id, result, status, traceback, request, now),
        }
        started = status == states.STARTED
        if connection.vendor == "postgresql":
            moved = self._execute_one_go(connection, _moved_and_upsert_sql(event, started), params)
        else:
            with connection.cursor() as cursor, transaction.atomic(using=using):
                cursor.execute(lifecycle.transition_sql(event), params)
                moved = bool(cursor.rowcount == 1)
                if moved:
                    cursor.execute(_task_result_upsert_sql(started, from_moved=False), params)
        if moved and started:
            start_outcomes.record(task_id, lifecycle.StartOutcome.STARTED)
        elif moved and event in {RunState.FAILURE, RunState.SUCCESS}:
            # The ORM path's mark_finished does the same.
            alerts.on_run_final(task_id, event, _job_name(request))
        return moved

    def _execute_one_go(
        self, connection: BaseDatabaseWrapper, sql: str, params: dict[str, Any]
    ) -> bool:
        """Run PostgreSQL's one statement, prepared (outside a transaction: a failed one would
        break it) unless the database turned out not to keep prepared statements; whether the
        run moved."""
        prepare = self.prepare_statements and not connection.in_atomic_block
        try:
            with self._server_bound_cursor(connection, prepare=prepare) as cursor:
                cursor.execute(sql, params)
                return bool(cursor.rowcount == 1)
        except ProgrammingError as error:
            if not prepare or not isinstance(error.__cause__, PREPARED_STATEMENT_LOST):
                raise
        # Behind a pooler that hands each transaction to any server connection, a statement
        # prepared on one is missing on the next: stop preparing in this process, run it plain.
        type(self).prepare_statements = False
        with self._server_bound_cursor(connection, prepare=False) as cursor:
            cursor.execute(sql, params)
            return bool(cursor.rowcount == 1)

    def _server_bound_cursor(
        self, connection: BaseDatabaseWrapper, *, prepare: bool
    ) -> CursorWrapper:
        """A Django cursor (execute wrappers and the DEBUG query log apply) over a psycopg
        cursor that binds parameters on the server: the values travel beside the SQL, where
        Django's default cursor quotes each of the ~20 into the text in Python (about a third
        of the pool process's CPU per store, measured). `prepare`: see StoreCursor.

        It skips Django's connection health check (a `SELECT 1` round trip before the first
        query after every task, one in three of a no-op task's round trips) when the backend
        retries a failed store: a store that meets a broken connection is then retried on a new
        one (`exception_safe_to_retry`), which is what the check is for. Without that retry
        the check runs as for any cursor."""
        if not self.always_retry:
            connection.close_if_health_check_failed()
        connection.ensure_connection()
        connection.validate_thread_sharing()
        pg = connection.connection
        if prepare and pg.prepare_threshold is None:
            pg.prepare_threshold = ONLY_WHEN_ASKED
        raw = StoreCursor(pg)
        raw.prepare = prepare  # False: not even one prepared before (it may be gone)
        driver_cursor: Any = raw  # what Django wraps (django-stubs say a CursorWrapper)
        if connection.queries_logged:
            return connection.make_debug_cursor(driver_cursor)
        return connection.make_cursor(driver_cursor)

    def _task_result_values(
        self,
        task_id: str,
        result: Any,
        status: str,
        traceback: str | None,
        request: Any,
        now: Any,
    ) -> dict[str, Any]:
        content_type, content_encoding, encoded = self.encode_content(result)
        children = self.current_task_children(request)
        extra = self._get_meta_from_request(request)
        meta = (
            '{"children": []}'
            if not children and not extra
            else self.encode_content({**extra, "children": children})[2]
        )
        name = getattr(request, "task", None)
        kwargs = getattr(request, "kwargs", None)
        if isinstance(kwargs, dict):
            kwargs = masked_params(name, kwargs)
        return {
            "status": status,
            "result": encoded,
            "traceback": traceback,
            "meta": meta,
            "content_type": content_type,
            "content_encoding": content_encoding,
            "task_name": name,
            "task_args": _json_or_none(getattr(request, "args", None)),
            "task_kwargs": _json_or_none(kwargs),
            "periodic_task_name": getattr(request, "periodic_task_name", None),
            "tr_worker": getattr(request, "hostname", None),
            "date_done": now,
        }

    def _move_run(
        self, task_id: str, status: str, result: Any, traceback: str | None, request: Any
    ) -> str | None:
        """Apply the event to the run; the status TaskResult should get, or None to skip it."""
        retries = int(getattr(request, "retries", 0) or 0)
        if status == states.STARTED:
            outcome = lifecycle.mark_started(
                task_id,
                retries=retries,
                worker=str(getattr(request, "hostname", "") or ""),
                first_seen=_queued_from_request(task_id, request),
            )
            start_outcomes.record(task_id, outcome)
            if outcome is lifecycle.StartOutcome.STARTED:
                return status
            return states.REVOKED if outcome is lifecycle.StartOutcome.CANCELLED else None
        if status == states.RETRY:
            return (
                status
                if lifecycle.mark_retry(task_id, retries=retries, error=_error(result))
                else None
            )
        final = {
            states.SUCCESS: RunState.SUCCESS,
            states.FAILURE: RunState.FAILURE,
            states.REVOKED: RunState.REVOKED,
        }.get(status)
        if final is not None:
            moved = lifecycle.mark_finished(
                task_id,
                final,
                error=_error(result, traceback),
                job_name=_job_name(request),
            )
            return status if moved else None
        # A custom state from update_state() (e.g. "PROGRESS" with meta) on a plain task.
        meta = result if isinstance(result, dict) else {}
        accepted = lifecycle.mark_custom_state(
            task_id,
            retries=retries,
            done=_int_or_none(meta.get("current", meta.get("done"))),
            total=_int_or_none(meta.get("total")),
            message=str(meta.get("message", "" if status == "PROGRESS" else status)),
        )
        return status if accepted else None

    def record_lost(self, task_id: str, message: str) -> bool:
        """The reaper's verdict: the run is LOST; TaskResult says FAILURE (WorkerLostError), so
        Celery clients waiting on the result see it end."""
        with transaction.atomic():
            if not lifecycle.mark_finished(task_id, RunState.LOST, error=message):
                return False
            run = Run.objects.get(task_id=task_id)
            request = SimpleNamespace(
                task=run.job_name, args=run.args, kwargs=run.params, hostname=run.worker or None,
                periodic_task_name=run.schedule_name or None, children=[],
            )  # fmt: skip
            failure = {
                "exc_type": "WorkerLostError",
                "exc_message": [message],
                "exc_module": "billiard.exceptions",
            }
            self._upsert_task_result(task_id, failure, states.FAILURE, None, request, None)
        return True

    def _upsert_task_result(
        self,
        task_id: str,
        result: Any,
        status: str,
        traceback: str | None,
        request: Any,
        using: str | None,
    ) -> None:
        """The TaskResult upsert on its own (the ORM path, inside its transaction)."""
        connection = connections[using or "default"]
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        params = {
            "task_id": task_id,
            **self._task_result_values(task_id, result, status, traceback, request, now),
        }
        sql = _task_result_upsert_sql(status == states.STARTED, from_moved=False)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)


def _queued_from_request(task_id: str, request: Any) -> lifecycle.QueuedRun:
    """A run first seen by a worker (sent by name, not through apply_async)."""
    schedule = str(getattr(request, "periodic_task_name", "") or "")
    delivery = getattr(request, "delivery_info", None) or {}
    return lifecycle.QueuedRun(
        task_id=task_id,
        job_name=str(getattr(request, "task", "") or ""),
        params=dict(getattr(request, "kwargs", None) or {}),
        args=list(getattr(request, "args", None) or []),
        source=RunSource.SCHEDULE if schedule else RunSource.CODE,
        actor_label=schedule or "code",
        schedule_name=schedule,
        queue=str(delivery.get("routing_key") or ""),
    )


def _job_name(request: Any) -> str | None:
    """The job the event is about (the run's job_name), if the request says."""
    return str(getattr(request, "task", "") or "") or None


def _error(result: Any, traceback: str | None = None) -> str:
    """A one-line error for the run: "ValueError: bad thing"."""
    if isinstance(result, dict) and "exc_type" in result:
        message = result.get("exc_message")
        if isinstance(message, list | tuple):
            message = ", ".join(str(part) for part in message)
        return f"{result['exc_type']}: {message}" if message else str(result["exc_type"])
    if isinstance(result, BaseException):
        return f"{type(result).__name__}: {result}"
    return ""


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str)


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def ledger_backend() -> LedgerBackend:
    """The app's result backend, which must be this one for the ledger to work."""
    backend = current_app.backend
    if not isinstance(backend, LedgerBackend):
        raise TypeError(
            'Taskdeck needs CELERY_RESULT_BACKEND = "tasks_app.worker.backend:LedgerBackend", '
            f"not {type(backend).__name__}."
        )
    return backend


@functools.cache
def _moved_and_upsert_sql(event: RunState, started: bool) -> str:
    """PostgreSQL's one statement: the run's transition feeding the TaskResult upsert."""
    update = lifecycle.transition_sql(event)
    upsert = _task_result_upsert_sql(started, from_moved=True)
    return f"WITH moved AS ({update} RETURNING task_id) {upsert}"


@functools.cache
def _task_result_upsert_sql(started: bool, *, from_moved: bool) -> str:
    """INSERT ... ON CONFLICT (task_id) DO UPDATE for TaskResult (PostgreSQL and SQLite share
    the syntax), its values either given or selected from the run the same statement moved."""
    table = TaskResult._meta.db_table
    columns = [*TASK_RESULT_COLUMNS, "date_created"] + (["date_started"] if started else [])
    names = {"worker": "tr_worker", "date_created": "date_done", "date_started": "date_done"}
    values = ", ".join(
        "task_id" if column == "task_id" and from_moved else f"%({names.get(column, column)})s"
        for column in columns
    )
    # Built only from constants (table and column names); every value is a bound parameter.
    source = f"SELECT {values} FROM moved" if from_moved else f"VALUES ({values})"  # noqa: S608
    updates = ", ".join(
        f"{column} = excluded.{column}"
        for column in columns
        if column not in {"task_id", "date_created"}
    )
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) {source} "
        f"ON CONFLICT (task_id) DO UPDATE SET {updates}"
    )
