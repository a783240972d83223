"""Diagnostic for the throughput benchmark: the SQL statements behind one task, per mode.

    python -m bench.sqlcount [--tasks 50]

Publishes a few no-op tasks for mode b (stock django-celery-results) and c (Taskdeck), counting
the publisher's statements with Django's CaptureQueriesContext, then runs each mode's worker with
DEBUG=true, `-l DEBUG` and bench/settings_sqllog.py, so the `django.db.backends` logger writes
every statement to the worker log, and counts them by kind. On PostgreSQL it also prints the
sessions opened and transactions committed per task (pg_stat_database). Slow by design: not a
throughput figure.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections import Counter
from pathlib import Path

from .common import Worker, database_label, emit, migrate, prepare_env, setup_django

STATEMENT = re.compile(rb"^\(\d+\.\d+\) (\w+)(?: (?:INTO|FROM)? ?\"?(\w+)\"?)?", re.MULTILINE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sqlcount", description=__doc__)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args(argv)
    n: int = args.tasks
    prepare_env(debug_default="true")
    setup_django()
    migrate()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from .throughput import Bench, queue_name, worker_args, worker_env

    bench = Bench(n, Path(settings.DATA_DIR) / "bench", timeout=120.0)
    emit("database", database_label())
    bench.flush_redis(force=False)
    emit("tasks", n)
    try:
        for mode in ("b", "c"):
            bench.delete_rows()
            with CaptureQueriesContext(connection) as publish_queries:
                for _ in range(n):
                    bench.tasks[mode].apply_async(queue=queue_name(mode))
            emit(f"publish_sql_per_task_{mode}", len(publish_queries) / n)
            connection.close()
            before = bench.pg_stats()
            env = {
                **worker_env(mode),
                "DEBUG": "true",
                "LOG_LEVEL": "DEBUG",
                "DJANGO_SETTINGS_MODULE": "bench.settings_sqllog",
            }
            cmd = worker_args(mode, f"bench-sql-{mode}-{os.getpid()}")
            cmd[cmd.index("-l") + 1] = "DEBUG"
            worker = Worker(
                cmd,
                bench.log_dir / f"worker-sql-{mode}.log",
                env,
            )
            try:
                worker.start()
                worker.wait_succeeded(n, 120.0)
                time.sleep(0.5)  # let the last task's log lines reach the file
            finally:
                worker.stop()
            after = bench.pg_stats()
            bench.check_rows(mode)
            kinds: Counter[str] = Counter()
            for verb, table in STATEMENT.findall(worker.log_path.read_bytes()):
                kinds[f"{verb.decode()} {table.decode()}".strip()] += 1
            emit(f"worker_sql_per_task_{mode}", sum(kinds.values()) / n)
            for kind, count in sorted(kinds.items()):
                emit(f"worker_sql_{mode}[{kind}]", count / n)
            if before is not None and after is not None:
                emit(f"pg_sessions_per_task_{mode}", (after[0] - before[0]) / n)
                emit(f"pg_commits_per_task_{mode}", (after[1] - before[1]) / n)
    finally:
        bench.delete_rows()
        bench.redis.flushdb()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
