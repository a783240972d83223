"""Retrying every failed run matching a filter through a bulk operation, at 10k and 100k runs.

    python -m bench.bulk_retry [--runs 10000,100000] [--replace]

For each size: N failed runs of the `@job` `bench.noop` are inserted (queue `bench.bulk-void`,
which no worker consumes, so the retries' messages stay there to be counted), then
`POST /api/v1/runs/bulk-operations` (token auth, Django's test client: the whole request in
this process) asks to retry all of them, with the typed count. Measured:
- request_s: the web request's time (target <= 1 s): permission, the matching count at the
  request, the operation's row, its audit entry and its job's launch;
- job_s: the `taskdeck.bulk_operation` job's run, started to finished, on a real worker
  (`celery -A dashboard worker --include bench.jobs -Q default --concurrency 1`, prefork);
  retries_per_s = N / job_s;
- worker_peak_rss_mb: the pool process's peak resident set (VmHWM, Linux) at the end, and its
  growth over the same process's peak before the job (worker_rss_growth_mb): batches keep it
  flat, so 100k should cost about what 10k does.
Checked after each size: N retries written, each linked to its original, N messages waiting in
the void queue. Then the rows, the queue and the worker go (a new worker per size, so each
peak is its own). Give it a database of its own: it refuses one that holds runs already,
unless `--replace` (which deletes them). Redis: only its own queues are touched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from .common import (
    BASE_DIR,
    Worker,
    database_label,
    emit,
    load_average,
    migrate,
    prepare_env,
    redis_label,
    setup_django,
)

VOID = "bench.bulk-void"
TARGET_REQUEST_S = 1.0
BENCH_USER = "bench-bulk"
SEED_CHUNK = 5000


def prepare() -> None:
    os.environ["HTTPS"] = "false"  # the test client speaks plain HTTP
    hosts = os.environ.get("ALLOWED_HOSTS", "").strip() or "localhost,127.0.0.1,[::1]"
    os.environ["ALLOWED_HOSTS"] = f"{hosts},testserver"
    prepare_env(debug_default="false")


def seed_failed(n: int) -> None:
    """N failed runs of bench.noop, in chunks of one INSERT each."""
    import uuid

    from django.utils import timezone

    from tasks_app.models import Run, RunState

    from .jobs import NOOP_JOB

    now = timezone.now()
    for start in range(0, n, SEED_CHUNK):
        count = min(SEED_CHUNK, n - start)
        Run.objects.bulk_create(
            [
                Run(
                    task_id=str(uuid.uuid4()),
                    job_name=NOOP_JOB,
                    state=RunState.FAILURE,
                    queue=VOID,
                    queued_at=now - timedelta(minutes=10),
                    started_at=now - timedelta(minutes=9),
                    finished_at=now - timedelta(minutes=9),
                    error="RuntimeError: bench",
                )
                for _ in range(count)
            ]
        )


def clean(redis: Any) -> None:
    """Empty the run ledger (the bench's own database) and the void queue."""
    from django.db import connection

    from tasks_app.models import AuditEntry

    AuditEntry.objects.filter(action__startswith="runs.bulk_operation").delete()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("TRUNCATE tasks_app_bulkoperation, tasks_app_run CASCADE")
        else:
            cursor.execute("DELETE FROM tasks_app_bulkoperation")
            cursor.execute("DELETE FROM tasks_app_run")
    redis.delete(VOID)


def worker_args(name: str) -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "dashboard", "worker", "--include", "bench.jobs",
        "-l", "INFO", "-n", f"{name}@%h", "-Q", "default",
        "--concurrency", "1", "-P", "prefork", "--without-mingle", "--without-gossip",
    ]  # fmt: skip


def pool_peak_rss_mb(worker: Worker) -> float:
    """The peak resident set (VmHWM) of the worker's pool process(es), in MiB."""
    import psutil

    assert worker.process is not None
    peak_kb = 0
    for child in psutil.Process(worker.process.pid).children(recursive=True):
        try:
            status = Path(f"/proc/{child.pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak_kb = max(peak_kb, int(line.split()[1]))
    return peak_kb / 1024


def measure(n: int, redis: Any, log_dir: Path) -> dict[str, Any]:
    from django.contrib.auth.models import User
    from django.db import close_old_connections, connection
    from django.test import Client

    from tasks_app.models import BulkOperation, BulkState, Run, RunState
    from tasks_app.tokens import issue_token

    from .jobs import NOOP_JOB

    clean(redis)
    started = time.perf_counter()
    seed_failed(n)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE tasks_app_run")
    seed_s = time.perf_counter() - started
    user, _ = User.objects.get_or_create(
        username=BENCH_USER, defaults={"is_staff": True, "is_superuser": True}
    )
    token = issue_token(user, f"bench {n}")[1]
    connection.close()

    worker = Worker(worker_args(f"bench-bulk-{os.getpid()}"), log_dir / f"worker-{n}.log", {
        **os.environ
    })  # fmt: skip
    worker.start()
    try:
        time.sleep(1.0)  # the pool process has imported everything
        rss_before = pool_peak_rss_mb(worker)
        client = Client()
        # A web process serves warm: its first request (URL conf, API schema) is not timed.
        client.get("/api/v1/runs/bulk-operations", headers={"Authorization": f"Bearer {token}"})
        body = {
            "action": "retry",
            "filters": {"job": NOOP_JOB, "state": ["FAILURE"]},
            "confirm_count": n,
        }
        request_started = time.perf_counter()
        response = client.post(
            "/api/v1/runs/bulk-operations",
            json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
        request_s = time.perf_counter() - request_started
        if response.status_code != 202:
            raise RuntimeError(f"{response.status_code}: {response.content[:500]!r}")
        operation_id = response.json()["id"]
        deadline = time.monotonic() + max(600, n / 50)
        while True:
            close_old_connections()
            operation = BulkOperation.objects.select_related("run").get(pk=operation_id)
            if operation.state in (BulkState.DONE, BulkState.FAILED):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"Not done in time: {operation.done} of {n}")
            time.sleep(0.5)
        time.sleep(0.5)  # the job's run is marked finished just after the operation
        rss_after = pool_peak_rss_mb(worker)
    finally:
        worker.stop()
    if operation.state != BulkState.DONE or operation.done != n:
        raise RuntimeError(f"{operation.state}: {operation.done} of {n} ({operation.error})")
    if operation.run_id is None:
        raise RuntimeError("The operation has no job run.")
    run = Run.objects.get(pk=operation.run_id)
    if run.state != RunState.SUCCESS or not (run.started_at and run.finished_at):
        raise RuntimeError(f"The job's run is {run.state}: {run.error[:500]}")
    retries = Run.objects.filter(retry_of__isnull=False, state=RunState.PENDING).count()
    messages = int(redis.llen(VOID))
    if retries != n or messages != n:
        raise RuntimeError(f"{retries} retries and {messages} messages, not {n}")
    job_s = (run.finished_at - run.started_at).total_seconds()
    return {
        "seed_s": seed_s,
        "request_s": request_s,
        "job_s": job_s,
        "retries_per_s": n / job_s,
        "worker_peak_rss_before_mb": rss_before,
        "worker_peak_rss_mb": rss_after,
        "worker_rss_growth_mb": rss_after - rss_before,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.bulk_retry", description=__doc__)
    parser.add_argument("--runs", default="10000,100000", help="sizes, comma-separated")
    parser.add_argument(
        "--replace", action="store_true", help="delete the runs the database holds first"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = [int(size) for size in args.runs.split(",") if size.strip()]
    prepare()
    setup_django()
    migrate()
    import redis as redis_client
    from django.conf import settings

    from tasks_app.models import Run
    from tasks_app.services.bulk_operations import BATCH_SIZE

    from . import jobs  # noqa: F401  (registers bench.noop here too)

    if Run.objects.exists() and not args.replace:
        raise SystemExit(
            "The database holds runs: give the bench a database of its own, or --replace."
        )
    redis = redis_client.Redis.from_url(settings.CELERY_BROKER_URL)
    emit("database", database_label())
    emit("redis", redis_label(settings.CELERY_BROKER_URL))
    emit("batch_size", BATCH_SIZE)
    emit("load_average_before", load_average())
    worst_request = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-bulk-", dir=BASE_DIR / ".data") as logs:
        try:
            for n in sizes:
                emit("runs", n)
                for name, value in measure(n, redis, Path(logs)).items():
                    emit(f"{n}_{name}", value)
                    if name == "request_s":
                        worst_request = max(worst_request, value)
        finally:
            clean(redis)
    emit("load_average_after", load_average())
    met = "met" if worst_request <= TARGET_REQUEST_S else "MISSED"
    emit("target_request_s", f"<= {TARGET_REQUEST_S} {met}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
