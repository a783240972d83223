"""The numbers on the pages (issue 13, item 3): per job, runs, failure rate, p50/p95 duration and
queue wait over 24 h and 7 d, and the last success, on the jobs list and the job's page, with a
duration histogram; the runs list's duration column and relative times; the overview's queue
wait chart. Runs are written to the ledger and counted by the real rollup, as the periodic job
does; the pages then read only the stats tables. A job whose runs a viewer may not read shows
that viewer no numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from celery import current_app
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tasks_app.jobs import registry
from tasks_app.jobs.context import JobContext
from tasks_app.jobs.registry import job
from tasks_app.metrics.rollup import roll_up
from tasks_app.models import JobHourStats, Run, RunState
from tests.integration.security.test_security_permissions import staff
from tests.support import ledger

pytestmark = pytest.mark.django_db

JOB = "demo.flaky"
GUARDED = "tests.guarded_numbers"
HIDDEN = "Hidden: needs this job's permission"
HOSTILE = "<img src=x onerror=alert(1)>"
# 10 finished runs of JOB: (state, seconds it ran). 2 of 10 failed or lost: 20%.
# Durations by bucket: 6 in (1 s, 2.5 s], 2 in (2.5 s, 5 s], 2 in (5 s, 10 s].
KNOWN = [
    (RunState.SUCCESS, 1.2), (RunState.SUCCESS, 1.4), (RunState.SUCCESS, 1.6),
    (RunState.SUCCESS, 1.8), (RunState.FAILURE, 2.0), (RunState.SUCCESS, 2.2),
    (RunState.LOST, 3.0), (RunState.SUCCESS, 4.0), (RunState.REVOKED, 6.0),
    (RunState.SUCCESS, 8.0),
]  # fmt: skip


@pytest.fixture
def boss(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("boss", password="x-Secret-123"))
    return client


def finished_run(
    state: RunState,
    seconds: float,
    *,
    job_name: str = JOB,
    ended: datetime | None = None,
    waited: float = 0.3,
) -> Run:
    """A final run that waited `waited` s in its queue, then ran `seconds` s, ending at `ended`
    (default: a minute ago)."""
    finished = ended or timezone.now() - timedelta(minutes=1)
    started = finished - timedelta(seconds=seconds)
    return ledger.make_run(
        state, job_name=job_name, queued_at=started - timedelta(seconds=waited),
        started_at=started, finished_at=finished,
    )  # fmt: skip


def count_runs() -> int:
    """The rollup, as its periodic job runs it, past its settle lag (runs that just finished)."""
    return roll_up(now=timezone.now() + timedelta(minutes=1))


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.content.decode()


def job_row(html: str, name: str) -> str:
    """The jobs list's row of the job named `name` (as it is shown, escaped)."""
    rows: list[str] = re.findall(r"<tr>.*?</tr>", html, flags=re.S)
    matching = [row for row in rows if f"<code>{name}</code>" in row]
    assert len(matching) == 1, name
    return matching[0]


def test_known_runs_give_known_figures_on_the_jobs_list_and_the_jobs_page(boss: Client) -> None:
    for state, seconds in KNOWN:
        finished_run(state, seconds)
    finished_run(RunState.SUCCESS, 1.5, ended=timezone.now() - timedelta(minutes=3))
    finished_run(RunState.SUCCESS, 1.5, ended=timezone.now() - timedelta(days=3))
    assert count_runs() == 12
    ledger.make_run(RunState.PENDING, job_name=JOB)  # not final: not counted
    Run.objects.filter(job_name=JOB, finished_at__isnull=False).delete()  # the stats stay

    response = boss.get(f"/jobs/{JOB}/")
    html = response.content.decode()

    day, week = response.context["numbers"].windows
    assert (day.runs, day.failures, day.failure_percent) == (11, 2, 18.2)
    assert (week.runs, week.failures) == (12, 2)
    assert 1 < day.duration_p50 <= 2.5
    assert 5 < day.duration_p95 <= 10
    assert 0.25 < day.wait_p50 <= 0.5
    assert 0.25 < day.wait_p95 <= 0.5
    assert '<th scope="col">Last 24 h</th><th scope="col">Last 7 d</th>' in html
    assert "<td>11</td><td>12</td>" in html
    assert '18.2% <span class="muted">(2)</span>' in html
    assert '16.7% <span class="muted">(2)</span>' in html
    # Last success: a minute ago, from the stats (its run is gone); absolute time on hover.
    assert re.search(r'<time datetime="[^"]+" title="\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \w+">'
                     r"1 min ago</time>", html)  # fmt: skip
    # The histogram: an SVG with a title and description, a bar per bucket with its range.
    assert 'role="img" aria-labelledby="histogram-title histogram-desc"' in html
    assert "How long 12 runs of Demo: flaky" in html
    assert "<title>1 s to 2.5 s: 8 runs</title>" in html
    assert "<title>2.5 s to 5 s: 2 runs</title>" in html
    assert "<title>5 s to 10 s: 2 runs</title>" in html
    assert ">≤ 2.5 s</text>" in html


def test_exact_percentiles_and_the_compact_jobs_list(boss: Client) -> None:
    for state, seconds in KNOWN:
        finished_run(state, seconds)
    count_runs()

    response = boss.get(f"/jobs/{JOB}/")
    day = response.context["numbers"].window(24)
    listing = job_row(page(boss, "/jobs/"), JOB)

    # Interpolated inside the bucket holding the rank (as Prometheus' histogram_quantile):
    # p50 is rank 5 of 6 in (1, 2.5]; p95 is rank 1.5 of 2 in (5, 10].
    assert day.failure_percent == 20.0
    assert day.duration_p50 == pytest.approx(2.25)
    assert day.duration_p95 == pytest.approx(8.75)
    html = response.content.decode()
    assert "<td>≈ 2.2 s</td>" in html
    assert "<td>≈ 8.8 s</td>" in html
    assert "10 runs · 20% failed" in listing
    assert "took ≈ 2.2 s (p50), ≈ 8.8 s (p95)" in listing
    assert re.search(r"waited ≈ 48\d ms \(p95\)", listing)  # rank 9.5 of 10 in (250, 500] ms
    assert "ago</time>" in listing  # last success


def test_a_run_3_days_old_counts_in_7_days_not_in_24_hours(boss: Client) -> None:
    finished_run(RunState.FAILURE, 2.0, ended=timezone.now() - timedelta(days=3))
    finished_run(RunState.SUCCESS, 2.0, ended=timezone.now() - timedelta(days=8))  # in neither
    count_runs()

    response = boss.get(f"/jobs/{JOB}/")
    listing = job_row(page(boss, "/jobs/"), JOB)

    day, week = response.context["numbers"].windows
    assert (day.runs, week.runs, week.failures) == (0, 1, 1)
    assert day.duration_p50 is None
    assert week.duration_p50 == pytest.approx(1.75)
    html = response.content.decode()
    assert "<td>0</td><td>1</td>" in html
    assert "<td>—</td><td>100% <span" in html
    assert "No runs in 24 h" in listing
    assert "8 d ago</time>" in listing  # the last success, older than both windows


def test_a_job_without_runs_says_so(boss: Client) -> None:
    response = boss.get("/jobs/demo.progress/")
    listing = job_row(page(boss, "/jobs/"), "demo.progress")

    assert response.status_code == 200
    assert '<p class="empty">No runs yet.</p>' in response.content.decode()
    assert "No runs yet" in listing


def test_the_pages_read_the_stats_not_the_run_ledger(boss: Client) -> None:
    for state, seconds in KNOWN:
        finished_run(state, seconds)
    count_runs()

    for url in (f"/jobs/{JOB}/", "/jobs/"):
        with CaptureQueriesContext(connection) as queries:
            page(boss, url)
        stats = [q["sql"] for q in queries if "jobhourstats" in q["sql"] or "jobtotals" in q["sql"]]
        assert len(stats) == 2, url  # one query per table, for every job on the page at once
        assert not any("tasks_app_run" in q["sql"] for q in queries), url


@pytest.fixture
def hostile_job() -> Iterator[str]:
    name = f"evil.{HOSTILE}"

    @job(name=name, title=HOSTILE, description=HOSTILE, retry="no_retry")
    def evil(ctx: JobContext) -> None:
        """Never runs."""

    try:
        yield name
    finally:
        registry._REGISTRY.pop(name, None)
        current_app.tasks.pop(name, None)


def test_hostile_job_strings_are_escaped_in_the_numbers_and_the_chart(
    boss: Client, hostile_job: str
) -> None:
    finished_run(RunState.SUCCESS, 0.7, job_name=hostile_job)
    finished_run(RunState.FAILURE, 0.2, job_name=hostile_job)
    count_runs()

    listing = page(boss, "/jobs/")
    job_page = boss.get("/jobs/evil.%3Cimg%20src=x%20onerror=alert(1)%3E/")
    html = job_page.content.decode()

    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    assert job_page.status_code == 200
    assert job_page.context["numbers"].window(24).runs == 2
    for text in (listing, html):
        assert HOSTILE not in text
        assert "<img" not in text
    assert "2 runs · 50% failed" in job_row(listing, f"evil.{escaped}")
    assert f"How long 2 runs of {escaped} took" in html  # the chart's description


@pytest.fixture
def guarded_job() -> Iterator[str]:
    """A job that asks for `auth.change_user` to launch it and to read its runs."""

    @job(name=GUARDED, title="Guarded numbers", retry="no_retry", permission="auth.change_user")
    def guarded(ctx: JobContext) -> None:
        """Never runs: no worker knows it."""

    try:
        yield GUARDED
    finally:
        registry._REGISTRY.pop(GUARDED, None)
        current_app.tasks.pop(GUARDED, None)


def test_a_restricted_jobs_numbers_are_shown_only_to_who_may_read_its_runs(
    client: Client, guarded_job: str
) -> None:
    finished_run(RunState.SUCCESS, 40.0, job_name=guarded_job, waited=600.0)
    finished_run(RunState.SUCCESS, 1.5, waited=0.3)
    running = ledger.make_run(
        RunState.STARTED, job_name=guarded_job, started_at=timezone.now() - timedelta(seconds=30)
    )
    count_runs()
    viewer = staff("viewer", "launch_job")
    keeper = staff("keeper", "launch_job", "change_user")

    client.force_login(viewer)
    listing = page(client, "/jobs/")
    job_page = client.get(f"/jobs/{guarded_job}/")
    overview = client.get("/")
    runs = page(client, "/runs/")

    assert HIDDEN in job_row(listing, guarded_job)
    assert "1 run · 0% failed" in job_row(listing, JOB)  # the other job's numbers stay
    assert job_page.context["numbers"] is None
    assert HIDDEN in job_page.content.decode()
    assert "Durations, last 7 days" not in (job_page.content.decode())
    assert overview.context["wait_chart"].peak <= 0.5  # the guarded job's 10 min waits: left out
    assert "so far" not in runs
    assert runs.count('title="Needs this job\'s permission"') == 2
    assert running.task_id[:12] in runs  # the run itself is listed, as before

    client.force_login(keeper)
    listing = page(client, "/jobs/")
    job_page = client.get(f"/jobs/{guarded_job}/")
    overview = client.get("/")
    runs = page(client, "/runs/")

    assert "1 run · 0% failed" in job_row(listing, guarded_job)
    assert job_page.context["numbers"].window(24).duration_p50 > 30
    assert overview.context["wait_chart"].peak > 300
    assert "so far" in runs
    assert "Needs this job" not in runs


def test_the_overview_charts_queue_wait_per_hour(boss: Client) -> None:
    last_hour = timezone.now() - timedelta(hours=1)
    for waited in (0.3, 0.4, 0.45, 20.0):  # p50 in (250 ms, 500 ms], p95 in (10 s, 30 s]
        finished_run(RunState.SUCCESS, 1.0, ended=last_hour, waited=waited)
    count_runs()

    response = boss.get("/")
    html = response.content.decode()

    chart = response.context["wait_chart"]
    assert len(chart.bars) == 24
    bar = chart.bars[-2]  # the hour before this one
    assert bar.runs == 4
    assert 0.25 < bar.p50 <= 0.5
    assert 10 < bar.p95 <= 30
    assert chart.peak == bar.p95
    assert bar.p95_height == pytest.approx(chart.height - 4)
    assert 0 < bar.p50_height < 4
    assert sum(b.runs for b in chart.bars) == 4
    assert 'aria-labelledby="wait-title wait-desc"' in html
    assert re.search(r"<title>\d\d:\d\d: p50 ≈ \d+ ms, p95 ≈ 2\d s \(4 runs\)</title>", html)
    assert "Runs and failures per hour" in html  # alongside the activity chart


def test_the_overview_says_when_no_run_waited(boss: Client) -> None:
    html = page(boss, "/")
    assert "No run that started has finished in the last 24 hours." in html


def test_the_runs_list_shows_durations_and_relative_times(boss: Client) -> None:
    now = timezone.now()
    done = finished_run(RunState.SUCCESS, 65.0, ended=now - timedelta(minutes=3))
    ledger.make_run(RunState.PROGRESS, job_name=JOB, started_at=now - timedelta(seconds=90))
    ledger.make_run(RunState.PENDING, job_name=JOB, minutes_ago=0)

    html = page(boss, "/runs/")
    rows = boss.get("/runs/", headers={"HX-Request": "true", "HX-Target": "rows"})

    assert '<th scope="col">Queued</th><th scope="col">Duration</th>' in html
    durations = re.findall(r'<td class="duration">(.*?)</td>', html)
    assert durations[0] == ""
    assert durations[2] == "1 min 5 s"
    assert re.fullmatch(r"1 min 3\d s so far", durations[1])  # running for 90 s
    local = timezone.localtime(done.queued_at)
    assert (
        f'<time datetime="{local.isoformat()}" '
        f'title="{local:%Y-%m-%d %H:%M:%S %Z}">4 min ago</time>'
    ) in html
    assert rows.content.decode().count('<td class="duration">') == 3
    assert html.count("just now</time>") + html.count(" s ago</time>") >= 1


def test_stats_written_directly_show_the_same_way(boss: Client) -> None:
    """The pages read whatever the stats tables hold: here rows as another rollup (or a restore)
    would leave them, with an hour's histogram given bucket by bucket."""
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    buckets = [0] * 21
    buckets[13] = 4  # (120 s, 300 s]
    JobHourStats.objects.create(
        job_name=JOB, hour=hour - timedelta(hours=30), state=RunState.SUCCESS, count=4,
        duration_count=4, duration_buckets=buckets, wait_count=4, wait_buckets=buckets,
    )  # fmt: skip

    response = boss.get(f"/jobs/{JOB}/")

    day, week = response.context["numbers"].windows
    assert (day.runs, week.runs) == (0, 4)
    assert week.duration_p50 == pytest.approx(210.0)  # halfway through (120, 300]
    assert "<td>—</td><td>≈ 3.5 min</td>" in response.content.decode()
