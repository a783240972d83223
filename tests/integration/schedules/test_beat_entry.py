"""Beat's bookkeeping never undoes an operator's edit: recording a send writes the row's last
run and run count only, and disabling an expired row writes only that it is disabled, however
old beat's copy of the row is (stock django-celery-beat saved the whole row)."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from dashboard.celery import app
from tasks_app.schedules.beat import TaskdeckScheduler
from tasks_app.schedules.entry import TaskdeckEntry

pytestmark = pytest.mark.django_db

BEFORE = {"steps": 1, "step_seconds": 0}
EDITED = {"steps": 2, "step_seconds": 0}


def loaded_then_edited(**row: object) -> TaskdeckEntry:
    """Beat's entry for a row, loaded before an operator changed the row's parameters."""
    every, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    task = PeriodicTask.objects.create(
        name="edited under beat", task="demo.progress", interval=every,
        kwargs=json.dumps(BEFORE), **row,
    )  # fmt: skip
    # django-celery-beat is untyped.
    entry = TaskdeckEntry(PeriodicTask.objects.get(pk=task.pk), app=app)  # type: ignore[no-untyped-call]
    PeriodicTask.objects.filter(pk=task.pk).update(kwargs=json.dumps(EDITED))
    return entry


def test_the_scheduler_uses_the_entry() -> None:
    assert TaskdeckScheduler.Entry is TaskdeckEntry


def test_recording_a_send_writes_the_last_run_and_count_and_keeps_the_edit() -> None:
    entry = loaded_then_edited()
    sent = next(entry)  # what beat does as it sends: the copy's last run moves to now

    with CaptureQueriesContext(connection) as queries:
        sent.save()

    row = PeriodicTask.objects.get(name="edited under beat")
    assert json.loads(row.kwargs) == EDITED
    assert row.last_run_at == sent.model.last_run_at
    assert row.total_run_count == 1
    [update] = [query["sql"] for query in queries.captured_queries]
    assert update.startswith("UPDATE"), update
    set_clause = update.split(" SET ", 1)[1].split(" WHERE ", 1)[0]
    assert sorted(re.findall(r'"(\w+)" = ', set_clause)) == ["last_run_at", "total_run_count"]


def test_an_expired_row_is_disabled_and_keeps_the_edit() -> None:
    entry = loaded_then_edited(expires=timezone.now() - timedelta(seconds=1))

    due = entry.is_due()  # type: ignore[no-untyped-call]  # django-celery-beat is untyped

    assert due.is_due is False
    row = PeriodicTask.objects.get(name="edited under beat")
    assert (row.enabled, row.last_run_at) == (False, None)
    assert json.loads(row.kwargs) == EDITED
