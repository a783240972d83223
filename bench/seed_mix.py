"""The data `bench.seed` generates: its jobs, users, sources and states, and their weights
(see bench/seed.py for the mix in words)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


Params = dict[str, Any]


def pick(rng: random.Random, table: Sequence[tuple[str, int]]) -> str:
    return rng.choices([name for name, _ in table], [weight for _, weight in table])[0]


def _day(rng: random.Random, now: float) -> str:
    return datetime.fromtimestamp(now - rng.randrange(1, 30) * DAY, UTC).date().isoformat()


def _email_params(rng: random.Random, now: float) -> Params:
    team = pick(rng, TEAMS)
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
    return {"team": pick(rng, TEAMS), "account_id": rng.randrange(10_000), "full": False}


def _digest_params(rng: random.Random, now: float) -> Params:
    return {"team": pick(rng, TEAMS), "day": _day(rng, now)}


def _reindex_params(rng: random.Random, now: float) -> Params:
    index = rng.choice(["orders", "customers", "products"])
    return {"index": index, "team": pick(rng, TEAMS), "batch": 500}


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
