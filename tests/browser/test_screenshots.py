"""Screenshots of Overview, Runs and Run detail, taken from a dashboard with real runs: some
finished on the real worker, one running, a retried failure, and a day of earlier history so
the chart has something to show.

They go to `.data/screenshots/` (ignored), so a test run leaves the work tree clean; to refresh
the ones the README shows: `SCREENSHOTS_DIR=docs/screenshots make test`."""

from __future__ import annotations

import os
import random
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Browser, Page, expect
from pytest_django.live_server_helper import LiveServer

from tasks_app import demo, services
from tasks_app.models import Run, RunSource, RunState
from tasks_app.services import Actor
from tests.browser.conftest import RUN_TIMEOUT_MS, active_runs, log_in, open_context
from tests.support.runs import finished, run_in
from tests.support.services import WorkerProcess, wait_for

SCREENSHOTS = Path(
    os.environ.get("SCREENSHOTS_DIR") or Path(settings.DATA_DIR) / "screenshots"
).resolve()


def earlier_history(hours_ago: range) -> None:
    """Finished runs over the last day, as schedules would have left them (no worker needed)."""
    rng = random.Random(7)  # the same picture every time
    jobs = [("demo.recount", "hourly-recount"), ("demo.flaky", "nightly-flaky"), ("demo.add", "")]
    for hours in hours_ago:
        for _ in range(rng.randint(0, 2)):
            job, schedule = rng.choice(jobs)
            queued = timezone.now() - timedelta(hours=hours, minutes=rng.randint(1, 50))
            failed = job == "demo.flaky" and rng.random() < 0.5
            Run.objects.create(
                task_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                job_name=job,
                state=RunState.FAILURE if failed else RunState.SUCCESS,
                source=RunSource.SCHEDULE if schedule else RunSource.CODE,
                schedule_name=schedule,
                actor_label=schedule or "code",
                params={"failure_rate": 0.5} if job == "demo.flaky" else {},
                queue="default",
                queued_at=queued,
                started_at=queued + timedelta(seconds=1),
                finished_at=queued + timedelta(seconds=rng.randint(2, 90)),
                error="RuntimeError: demo.flaky failed (failure rate 50%)." if failed else "",
            )


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True, animations="disabled", caret="hide")
    assert path.stat().st_size > 10_000, f"{path} looks empty"


def test_screenshots_of_overview_runs_and_run_detail(
    boss_page: Page,
    boss: User,
    browser: Browser,
    live_server: LiveServer,
    live_worker: WorkerProcess,
) -> None:
    page = boss_page
    actor = Actor(user=boss)
    earlier_history(range(1, 24))

    # Real runs on the real worker: successes, a failure and its retry, a cancelled run.
    progress = services.job_launch(
        "demo.progress", {"steps": 30, "step_seconds": 0.05}, actor=actor
    )
    services.job_launch("demo.flaky", {"failure_rate": 0}, actor=actor)
    failed = services.job_launch("demo.flaky", {"failure_rate": 1}, actor=actor)
    demo.add.delay(2, 3)
    cancelled = services.job_launch(
        "demo.progress", {"steps": 500, "step_seconds": 0.1}, actor=actor
    )
    run_in(cancelled.task_id, [RunState.PROGRESS])
    services.run_cancel(cancelled, actor=actor)
    finished(cancelled.task_id)
    assert finished(failed.task_id).state == RunState.FAILURE
    retry = services.run_retry(Run.objects.get(pk=failed.pk), actor=actor)
    finished(retry.task_id)
    finished(progress.task_id)
    wait_for(lambda: not active_runs())  # demo.add too
    # ...and one still running while the overview and the list are taken.
    running = services.job_launch(
        "demo.progress", {"steps": 1000, "step_seconds": 0.02}, actor=actor
    )
    wait_for(lambda: (Run.objects.get(pk=running.pk).progress_done or 0) >= 150)

    page.goto("/")
    expect(page.locator("#active-runs progress")).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    expect(page.locator("section[aria-labelledby=failures-title] tbody tr")).not_to_have_count(0)
    shoot(page, "overview.png")

    page.goto("/runs/")
    expect(page.locator("#rows tr.active")).to_have_count(1)
    shoot(page, "runs.png")

    services.run_cancel(Run.objects.get(pk=running.pk), actor=actor)
    finished(running.task_id)

    # A finished run, in the light and the dark theme.
    detail = f"/runs/{progress.task_id}/"
    page.goto(detail)
    expect(page.locator("#live [data-state]")).to_have_text("Succeeded")
    expect(page.locator("section[aria-labelledby=result]")).to_be_visible()
    shoot(page, "run-detail.png")

    dark = open_context(browser, live_server, color_scheme="dark")
    try:
        dark_page = dark.new_page()
        log_in(dark_page, boss.username)
        dark_page.goto(detail)
        expect(dark_page.locator("#live [data-state]")).to_have_text("Succeeded")
        assert dark_page.evaluate("matchMedia('(prefers-color-scheme: dark)').matches")
        shoot(dark_page, "run-detail-dark.png")
    finally:
        dark.close()
