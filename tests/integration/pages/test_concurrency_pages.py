"""The job's page shows its concurrency limit and counts and lets those with the permission
change it (inline errors for bad values); the jobs list and the runs list show the limit and
which runs wait for a slot."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tasks_app.models import AuditEntry, JobLimit, RunState
from tests.support import ledger
from tests.support.concurrency_slots import slots_taken

if TYPE_CHECKING:
    from django.test.client import _MonkeyPatchedWSGIResponse

LAUNCH = reverse("tasks_app:launch", args=["demo.limited"])


@pytest.fixture
def boss(client: Client, db: None) -> Client:
    client.force_login(User.objects.create_superuser("boss", password="x-Secret-123"))
    return client


def change(client: Client, **fields: str) -> _MonkeyPatchedWSGIResponse:
    data = {"action": "concurrency", **{f"concurrency-{k}": v for k, v in fields.items()}}
    return client.post(LAUNCH, data)


def test_the_page_shows_the_limit_and_who_waits(boss: Client) -> None:
    ledger.make_run(RunState.PENDING, job_name="demo.limited", slot_wait_since=timezone.now())

    with slots_taken("demo.limited", held=2, waiting=1):
        page = boss.get(LAUNCH).content.decode()
        listing = boss.get(reverse("tasks_app:jobs")).content.decode()

    assert "At most <strong>2</strong> runs at once" in page
    assert "from the code" in page
    assert "Running: 2 · Waiting for a slot: 1" in page
    assert 'name="concurrency-concurrency"' in page
    assert "at most 2" in listing
    assert "2 running · 1 waiting" in listing
    runs = boss.get(reverse("tasks_app:runs")).content.decode()
    assert "waiting for a slot" in runs


def test_an_operator_changes_the_limit_on_the_page(boss: Client) -> None:
    response = change(boss, concurrency="3")

    assert response.status_code == 302
    assert JobLimit.objects.get(job_name="demo.limited").concurrency == 3
    page = boss.get(LAUNCH).content.decode()
    assert "At most <strong>3</strong> runs at once" in page
    assert "set by boss" in page
    assert AuditEntry.objects.filter(action="job.concurrency", actor_label="boss").exists()

    assert change(boss, concurrency="").status_code == 302  # empty: no limit
    assert JobLimit.objects.get(job_name="demo.limited").concurrency is None
    assert "<strong>No limit</strong>" in boss.get(LAUNCH).content.decode()

    assert change(boss, concurrency="", use_code_default="on").status_code == 302
    assert not JobLimit.objects.exists()


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "two", "<b>9</b>"])
def test_bad_values_are_refused_inline(boss: Client, value: str) -> None:
    response = change(boss, concurrency=value)

    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="id_concurrency-concurrency_error"' in page
    assert "<b>9</b>" not in page
    assert not JobLimit.objects.exists()


def test_without_the_permission_there_is_no_form_and_a_post_is_refused(
    client: Client, db: None
) -> None:
    user = User.objects.create_user("viewer", password="x-Secret-123", is_staff=True)
    client.force_login(user)

    assert 'name="concurrency-concurrency"' not in client.get(LAUNCH).content.decode()
    assert change(client, concurrency="1").status_code == 403
    assert not JobLimit.objects.exists()


def test_the_limit_field_shows_the_limit_in_force_so_saving_it_untouched_keeps_it(
    boss: Client,
) -> None:
    """An empty field means "no limit": a form shown empty would lift the code's limit when
    saved untouched."""
    page = boss.get(reverse("tasks_app:launch", args=["demo.limited"])).content.decode()

    assert 'name="concurrency-concurrency" value="2"' in page
