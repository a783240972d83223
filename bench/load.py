"""Live pages under load: 20 operators polling while 10,000 runs flow through two workers.

    python -m bench.load [--runs 10000] [--operators 20] [--repeats 1] [--timeout S]

Each repeat runs the same flow twice on the same Redis, database and web server: once with
nobody watching, once with the operators polling (the order alternates between repeats). A flow:
N runs of `bench.steps` (5 progress steps of 2 ms) are published to the queue `bench.load` while
no worker runs; then two `celery -A dashboard worker` processes (prefork, 2 processes each) are
launched at the same moment. Timing starts when both have logged "ready." and counts only the
runs that finished after it: throughput = (N - runs done before that moment) / (time from it to
the N-th "succeeded" line over both logs). After each flow the database must hold N bench.steps
runs and N TaskResult rows, all SUCCESS, none active, and the queue must be empty.

The web server is gunicorn (gthread, 2 workers x 8 threads, DEBUG off, collected static files)
serving the real pages on 127.0.0.1. Each operator is a thread with its own signed-in session,
doing what a browser with three tabs does: the overview, the runs list of `bench.steps` (half of
the operators with the "Started"/"Running" state boxes ticked) and one run's page. Each tab
polls its live region as htmx does (overview `active-runs` and the list's `rows` every 2 s, the
run's `live` every 1 s, each timer restarting when the answer arrives) while its last answer
still carries the poll trigger; a tab whose polling stopped is reloaded (a full page). The run to
watch is a link of an active row in the list's latest HTML; when its run ends, the operator opens
another. Operators start once the runs are queued and stop when the flow ends.

Errors: every non-2xx answer and every failed request, every problem line in the web server's
log (tracebacks, ERROR, Django's 4xx/5xx warnings) and in the workers' logs. Any of them, or a
wrong database state, exits non-zero before the last line. It prints each poll and page kind's
count and p50/p95/max, the poll p50/p95/max over all polls, the error counts, both throughputs
and, last, `ratio: R` = throughput watched / throughput unwatched (best of the repeats each).

The bench's rows, sessions and user are deleted before and after; the Redis database of
REDIS_URL (default redis://127.0.0.1:6379/14) is flushed before and after. PostgreSQL
(DATABASE_URL) is what it is meant for; SQLite works but serialises every write.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from .common import (
    database_label,
    emit,
    load_average,
    migrate,
    prepare_env,
    redis_label,
    setup_django,
)
from .load_config import HOST, WORKERS
from .load_flow import Bench, FlowResult, delete_rows, delete_sessions, flush_redis, make_sessions
from .load_operators import POLL_KINDS, Samples, percentile
from .load_services import WebServer
from .load_signals import Interrupted, interrupt, signals_deferred

# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--runs", type=int, default=10_000, help="runs per flow (10000)")
    parser.add_argument("--operators", type=int, default=20, help="operators polling (20)")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of flows (1); best kept")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds per flow (max(120, runs/10))"
    )
    parser.add_argument(
        "--force-flush", action="store_true", help="FLUSHDB even if Redis holds other keys"
    )
    args = parser.parse_args(argv)
    if not (1 <= args.runs <= 1_000_000 and 1 <= args.operators <= 200 and 1 <= args.repeats <= 10):
        parser.error("--runs 1..1000000, --operators 1..200, --repeats 1..10")
    return args


def emit_latencies(name: str, values: list[float]) -> None:
    emit(f"{name}_count", len(values))
    for label, p in (("p50", 50), ("p95", 95), ("max", 100)):
        emit(f"{name}_{label}_ms", percentile(values, p) * 1000)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["DEBUG"] = "false"  # the production code path: no query log, no debug pages
    os.environ["HTTPS"] = "false"  # plain HTTP on the loopback; TLS is a proxy's job anyway
    os.environ.setdefault("ALLOWED_HOSTS", f"{HOST},localhost")
    prepare_env(debug_default="false")
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started ignoring it
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    setup_django()
    migrate()
    import redis
    from django.conf import settings
    from django.core.management import call_command

    from . import jobs  # noqa: F401 - registers bench.steps in this process

    # Production's static storage needs its manifest to render a full page.
    call_command("collectstatic", interactive=False, verbosity=0)
    url: str = settings.CELERY_BROKER_URL
    client = redis.Redis.from_url(url)
    timeout: float = args.timeout or max(120.0, args.runs / 10)
    log_dir = Path(settings.DATA_DIR) / "bench-load"
    log_dir.mkdir(parents=True, exist_ok=True)
    emit("database", database_label())
    emit("redis", redis_label(url))
    flush_redis(client, url, args.force_flush)
    emit("debug", settings.DEBUG)
    emit("runs", args.runs)
    emit("operators", args.operators)
    emit("repeats", args.repeats)
    emit("workers", f"{WORKERS} x prefork 2, --without-mingle --without-gossip, no -E, -l INFO")
    emit("web", "gunicorn gthread, 2 workers x 8 threads, 127.0.0.1")
    emit("logs", log_dir)
    emit("load_average_before", load_average())

    web = WebServer(log_dir / "gunicorn.log")
    samples = Samples()
    results: dict[bool, list[FlowResult]] = {False: [], True: []}
    keys: list[str] = []
    user_created = False
    try:
        delete_rows()
        cookies, keys, user_created = make_sessions(args.operators)
        web.start()
        web.warm_up(cookies[0])
        bench = Bench(args.runs, log_dir, timeout, client, web.port, cookies, samples)
        for repeat in range(1, args.repeats + 1):
            order = (False, True) if repeat % 2 else (True, False)
            for watched in order:
                label = f"{'watched' if watched else 'unwatched'}-{repeat}"
                result = bench.flow(label, watched)
                results[watched].append(result)
                emit(f"throughput_{label.replace('-', '_run')}_per_s", result.rate)
                emit(
                    f"runs_done_before_ready_{label.replace('-', '_run')}", result.done_before_ready
                )
    except Interrupted as stopped:
        print(f"interrupted ({stopped}); stopped what it started", file=sys.stderr)
        return 130
    finally:
        with signals_deferred():
            web.stop()
            delete_rows()
            delete_sessions(keys, user_created)
            client.flushdb()

    polls = samples.polls()
    for kind in sorted(samples.latencies):
        emit_latencies(f"poll_{kind}" if kind in POLL_KINDS else kind, samples.latencies[kind])
    web_problems = web.problems()
    errors = samples.http_errors + samples.request_errors + web_problems
    emit("http_errors", len(samples.http_errors))
    emit("request_errors", len(samples.request_errors))
    emit("web_log_errors", len(web_problems))
    emit("reconnects", samples.reconnects)
    for message in errors[:10]:
        print(f"  error: {message}", flush=True)
    emit("publish_per_s", max(r.runs / r.publish_seconds for rs in results.values() for r in rs))
    emit("load_average_after", load_average())
    emit_latencies("poll", polls)
    unwatched_rate = max(r.rate for r in results[False])
    watched_rate = max(r.rate for r in results[True])
    emit("throughput_unwatched_per_s", unwatched_rate)
    emit("throughput_watched_per_s", watched_rate)
    if errors or not polls:
        print(f"FAILED: {len(errors)} errors, {len(polls)} polls", file=sys.stderr, flush=True)
        return 1
    emit("ratio", watched_rate / unwatched_rate)
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except (KeyboardInterrupt, Interrupted):
        print("interrupted; stopped what it started", file=sys.stderr)
        raise SystemExit(130) from None
