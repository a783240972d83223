"""A job's concurrency limit changed from its page in Chromium by a staff user with the
permission: the code's limit shown, a new one saved (shown, audited), a bad one refused inline
with nothing changed; then, on the session's real worker, the runs beyond the limit show as
waiting for a slot in the runs list and each runs once, never two at a time."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import Permission, User
from django.db import close_old_connections
from playwright.sync_api import Page, expect

from tasks_app.models import AuditEntry, JobLimit, Run, RunState
from tasks_app.services import job_limits
from tests.browser.conftest import PASSWORD, RUN_TIMEOUT_MS, log_in
from tests.support.concurrency_slots import max_overlap
from tests.support.runs import operator
from tests.support.services import LIMITS_REFRESH_SECONDS, WorkerProcess

JOB = "demo.limited"  # @job(concurrency=2)
LAUNCH = f"/jobs/{JOB}/"
RUNS = 3
RUN_SECONDS = "4"  # long enough that a run launched meanwhile visibly waits for its slot


@pytest.fixture
def limits_operator(transactional_db: None) -> User:
    """A staff user (not a superuser) who may launch jobs and change their limits."""
    user = User.objects.create_user("limits-op", password=PASSWORD, is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["launch_job", "manage_job_limits"])
    )
    return user


@pytest.fixture
def code_limit_restored(live_worker: WorkerProcess) -> Iterator[None]:
    """Afterwards the code's limit again, also in the workers' copy in Redis (which outlives
    the test database's flush), so no later test meets this test's limit."""
    yield
    close_old_connections()
    job_limits.job_limit_set(JOB, None, actor=operator(), use_code_default=True)


def save_limit(page: Page, value: str) -> int:
    """Type `value` into the limit form and save it; the status of the page it lands on."""
    section = page.locator("#concurrency")
    section.get_by_label("At most this many runs at once").fill(value)
    with page.expect_navigation() as sent:
        section.get_by_role("button", name="Save limit").click()
    response = sent.value
    assert response is not None
    return response.status


def launch(page: Page) -> None:
    """Launch one run from the job's form (it lands on the run's page)."""
    page.goto(LAUNCH)
    page.locator("#id_seconds").fill(RUN_SECONDS)
    page.get_by_role("button", name="Launch", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs/[^/]+/$"))
    expect(page.get_by_role("status").filter(has_text="Launched")).to_be_visible()


def test_change_a_jobs_limit_on_its_page_and_watch_runs_wait_for_a_slot(
    page: Page, limits_operator: User, code_limit_restored: None
) -> None:
    log_in(page, limits_operator.username)
    page.goto(LAUNCH)
    section = page.locator("#concurrency")
    expect(section).to_contain_text("At most 2 runs at once, across all workers")
    expect(section).to_contain_text("(from the code)")

    # A new limit: saved, shown with who set it and the code's value, audited.
    assert save_limit(page, "1") == 200
    expect(page).to_have_url(re.compile(rf"{re.escape(LAUNCH)}$"))
    expect(page.get_by_role("status")).to_contain_text("Concurrency limit of")
    expect(section).to_contain_text("At most 1 run at once, across all workers")
    expect(section).to_contain_text("set by limits-op")
    expect(section).to_contain_text("the code says 2")
    expect(page.locator("p.muted", has_text="· at most 1 at once")).to_be_visible()
    assert JobLimit.objects.get(job_name=JOB).concurrency == 1
    entry = AuditEntry.objects.get(action="job.concurrency")
    assert (entry.actor_label, entry.target_type, entry.target_id) == ("limits-op", "job", JOB)
    assert entry.details == {"job": JOB, "from": 2, "to": 1, "source": "operator"}

    # 0 is refused next to the field; the limit in force stays 1 and nothing is audited.
    assert save_limit(page, "0") == 400
    field = section.get_by_label("At most this many runs at once")
    expect(field).to_have_value("0")
    expect(section.locator("#id_concurrency-concurrency_error")).to_have_text(
        "At least 1; leave it empty for no limit."
    )
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(section).to_contain_text("At most 1 run at once, across all workers")
    assert JobLimit.objects.get(job_name=JOB).concurrency == 1
    assert AuditEntry.objects.filter(action="job.concurrency").count() == 1

    # Workers read the limits again every LIMITS_REFRESH_SECONDS: let the worker see the new one.
    page.wait_for_timeout((LIMITS_REFRESH_SECONDS + 1) * 1000)
    for _ in range(RUNS):
        launch(page)

    page.goto(f"/runs/?job={JOB}")
    rows = page.locator("#rows tr")
    # The list refreshes itself every 2 s while runs are active.
    expect(rows.filter(has_text="waiting for a slot").first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(rows.filter(has_text="Succeeded")).to_have_count(RUNS, timeout=4 * RUN_TIMEOUT_MS)
    expect(page.get_by_text("waiting for a slot")).to_have_count(0)

    close_old_connections()
    runs = list(Run.objects.filter(job_name=JOB))
    assert [run.state for run in runs] == [RunState.SUCCESS] * RUNS
    assert [run.attempts for run in runs] == [1] * RUNS  # each ran exactly once
    assert max_overlap(runs) == 1  # the limit set on the page held on the worker
