"""Measuring for `python -m bench.history`: the server time of a request through Django's test
Client, the share spent in SQL, and the plans of its statements."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .common import emit, is_postgresql, median
from .history_cases import Case


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


LEDGER_TABLES = ("tasks_app_run", "django_celery_results_taskresult")


def explain(
    client: Any, case: Case, timer: SqlTimer, tables: tuple[str, ...] = LEDGER_TABLES
) -> None:
    """Each statement of one request of the case, with its plan (PostgreSQL) when it reads one
    of `tables` (by name or prefix)."""
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
        if not any(table in sql for table in tables):
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
