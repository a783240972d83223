"""Which jobs have failure alerts open: a per-process cache, so a successful run costs no query.

A success resolves its job's open RUN_FAILED / SCHEDULE_FAILING alerts at once, but nearly every
success has nothing to resolve, and the worker records thousands of them. So each process keeps
the names of the jobs with open failure alerts (a SCHEDULE_FAILING alert names the job of the
run that completed its streak), read again at most every REFRESH_SECONDS: a success of a job not
in it is ignored without a query. A name can be missing for up to that long after another
process fired the alert; the periodic pass (every 15 s) resolves what this misses.
"""

from __future__ import annotations

import threading
import time

from ..models import Alert, AlertRuleKind

REFRESH_SECONDS = 10.0
FAILURE_KINDS = (AlertRuleKind.RUN_FAILED, AlertRuleKind.SCHEDULE_FAILING)


class OpenFailures:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: frozenset[str] = frozenset()
        self._read_at: float | None = None  # time.monotonic() of the last read; None: never

    def cached(self) -> frozenset[str] | None:
        """The job names if the cache is fresh (no query), else None."""
        jobs, read_at = self._jobs, self._read_at
        if read_at is None or time.monotonic() - read_at >= REFRESH_SECONDS:
            return None
        return jobs

    def jobs(self) -> frozenset[str]:
        """The job names, read from the database first if the cache is stale (one query)."""
        jobs = self.cached()
        if jobs is None:
            names = frozenset(
                Alert.objects.filter(
                    resolved_at__isnull=True, rule__enabled=True, rule__kind__in=FAILURE_KINDS
                )
                .order_by()
                .values_list("job_name", flat=True)
                .distinct()
            )
            with self._lock:
                self._jobs, self._read_at = names, time.monotonic()
            return names
        return jobs

    def note(self, job_name: str) -> None:
        """This process just fired a failure alert for the job: its next success resolves it
        without waiting for a refresh."""
        with self._lock:
            self._jobs = self._jobs | {job_name}

    def forget(self) -> None:
        """Drop what is cached: the next look reads the database."""
        with self._lock:
            self._jobs, self._read_at = frozenset(), None


open_failures = OpenFailures()
