"""ISO 8601 allows offsets up to ±23:59; PostgreSQL's timestamptz refuses those beyond ±15:59.
Every input time goes on in UTC, so such an offset filters, or is stored, like any other."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tasks_app.models import RunState
from tasks_app.tokens import issue_token
from tests.support.ledger import make_run

pytestmark = pytest.mark.django_db


def test_a_runs_filter_with_an_offset_beyond_postgresqls_range_is_not_a_500(
    client: Client,
) -> None:
    boss = User.objects.create_superuser("boss", password="x-Secret-123")
    headers = {"Authorization": f"Bearer {issue_token(boss, 'ci')[1]}"}
    before = make_run(RunState.SUCCESS, queued_at=datetime(2019, 12, 31, 4, 0, tzinfo=UTC))
    after = make_run(RunState.SUCCESS, queued_at=datetime(2019, 12, 31, 5, 0, tzinfo=UTC))

    # 2020-01-01T00:00+19:11 is 2019-12-31T04:49 UTC.
    since = quote("2020-01-01T00:00:00+19:11")
    response = client.get(f"/api/v1/runs?since={since}", headers=headers)

    assert response.status_code == 200, response.content
    listed = {run["task_id"] for run in response.json()["items"]}
    assert after.task_id in listed
    assert before.task_id not in listed
