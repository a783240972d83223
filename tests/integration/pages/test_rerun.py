"""The "Run again with changes" page through the test client: the form filled in with the run's
parameters (a sensitive one never sent to the browser, kept when left empty), inline errors
with nothing queued, the new run's page showing what changed (escaped), the permissions, and
the slot-wait line of a queued run. One journey runs on the real worker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tasks_app import services
from tasks_app.jobs.sealing import SEALED, seal, unseal
from tasks_app.models import AuditEntry, Run, RunSource, RunState
from tasks_app.services import Actor
from tests.support import ledger
from tests.support.runs import finished
from tests.support.services import WorkerProcess

pytestmark = pytest.mark.django_db

HOSTILE = '<script>alert("x")</script>'
SECRET = "rerun-page-S3cret-never-shown"


@pytest.fixture
def boss_user() -> User:
    return User.objects.create_superuser("boss", password="x-Secret-123")


@pytest.fixture
def boss(client: Client, boss_user: User) -> Client:
    client.force_login(boss_user)
    return client


def rerun_url(run: Run) -> str:
    return reverse("tasks_app:run_rerun", args=[run.task_id])


def run_url(run: Run | str) -> str:
    return reverse("tasks_app:run", args=[run if isinstance(run, str) else run.task_id])


def sensitive_run(user: User, label: str = "first", **fields: Any) -> Run:
    """A demo.sensitive run launched as a user would (its password sealed), then failed."""
    run = services.job_launch(
        "demo.sensitive", {"password": SECRET, "label": label}, actor=Actor(user=user)
    )
    values = {"state": RunState.FAILURE, "finished_at": timezone.now(), **fields}
    Run.objects.filter(pk=run.pk).update(**values)
    run.refresh_from_db()
    return run


def new_run_after(response: Any) -> Run:
    assert response.status_code == 302, response.content.decode()[:2000]
    task_id = response["Location"].rstrip("/").rsplit("/", 1)[1]
    return Run.objects.get(task_id=task_id)


def test_the_form_is_filled_in_and_never_shows_the_sealed_value(
    boss: Client, boss_user: User, broker: str
) -> None:
    original = sensitive_run(boss_user, label=HOSTILE)

    response = boss.get(rerun_url(original))

    assert response.status_code == 200
    html = response.content.decode()
    assert "Run again: Demo: sensitive parameter" in html
    assert f'value="{HOSTILE}"' not in html
    assert 'value="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"' in html  # label, escaped
    assert SECRET not in html
    assert original.params["password"][SEALED] not in html
    assert SEALED not in html
    assert "leave this empty to keep it" in html  # the password field keeps the stored value
    assert Run.objects.count() == 1


def test_a_sealed_value_of_a_parameter_no_longer_sensitive_is_not_put_in_the_form(
    boss: Client, broker: str
) -> None:
    token = seal(0.75, "demo.flaky", "failure_rate")  # sealed when it was sensitive
    original = ledger.make_run(RunState.FAILURE, params={"failure_rate": token})

    html = boss.get(rerun_url(original)).content.decode()
    sent = boss.post(rerun_url(original), {"failure_rate": "0.25"})

    assert token[SEALED] not in html
    assert SEALED not in html
    assert 'value="0.75"' not in html  # the field shows the job's default: entered again
    assert new_run_after(sent).params == {"failure_rate": 0.25}


def test_a_blank_sensitive_field_keeps_the_original_and_the_new_page_shows_the_diff(
    boss: Client, boss_user: User, broker: str
) -> None:
    original = sensitive_run(boss_user, label=HOSTILE)

    response = boss.post(rerun_url(original), {"password": "", "label": "second"})

    new = new_run_after(response)
    assert new.params["password"] == original.params["password"]  # the very sealed token
    assert new.params["label"] == "second"
    assert (new.retry_of_id, new.root_id, new.source) == (
        original.pk, original.pk, RunSource.RETRY,
    )  # fmt: skip
    entry = AuditEntry.objects.get(action="run.retry", target_id=new.task_id)
    assert entry.details["changed"] == ["label"]
    page = boss.get(response["Location"])
    html = page.content.decode()
    assert "Running Demo: sensitive parameter again, with your changes." in html
    assert "Changes from the run it re-ran" in html
    assert 'data-param="label" data-change="changed"' in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html  # the old label, escaped
    assert HOSTILE not in html
    assert 'data-param="password" data-change="unchanged"' in html
    assert "sensitive: not shown" in html
    assert SECRET not in html
    assert original.params["password"][SEALED] not in html


def test_a_new_sensitive_value_is_sealed_and_shown_only_as_changed(
    boss: Client, boss_user: User, broker: str
) -> None:
    original = sensitive_run(boss_user)

    response = boss.post(rerun_url(original), {"password": "brand-new-pw", "label": "first"})

    new = new_run_after(response)
    assert unseal(new.params["password"]) == "brand-new-pw"
    html = boss.get(run_url(new)).content.decode()
    assert 'data-param="password" data-change="changed"' in html
    assert "brand-new-pw" not in html
    assert "1 other parameter unchanged." in html


def test_invalid_input_is_shown_inline_and_nothing_is_queued(boss: Client, broker: str) -> None:
    original = ledger.make_run(
        RunState.FAILURE, job_name="demo.progress", params={"steps": 5, "step_seconds": 0.1}
    )
    audited = AuditEntry.objects.count()

    response = boss.post(rerun_url(original), {"steps": "0", "step_seconds": "0.5"})

    assert response.status_code == 400
    html = response.content.decode()
    assert "Ensure this value is greater than or equal to 1." in html
    assert 'value="0.5"' in html  # what was typed is still there
    assert list(Run.objects.all()) == [original]
    assert AuditEntry.objects.count() == audited


def test_the_run_page_offers_it_for_a_finished_run_and_a_plain_retry_shows_no_change(
    boss: Client, broker: str
) -> None:
    failed = ledger.make_run(RunState.FAILURE, params={"failure_rate": 1.0})
    succeeded = ledger.make_run(RunState.SUCCESS, params={"failure_rate": 0.0})
    running = ledger.make_run(RunState.STARTED, params={"failure_rate": 0.0})

    pages = {run.state: boss.get(run_url(run)).content.decode() for run in (failed, succeeded,
                                                                            running)}  # fmt: skip
    retried = boss.post(reverse("tasks_app:run_retry", args=[failed.task_id]))
    plain = boss.get(retried["Location"]).content.decode()

    link = f'href="{rerun_url(failed)}">Run again with changes</a>'
    assert link in pages[RunState.FAILURE]
    assert f'href="{rerun_url(succeeded)}">Run again with changes</a>' in pages[RunState.SUCCESS]
    assert "Run again with changes" not in pages[RunState.STARTED]
    assert "Changes from the run it re-ran" not in pages[RunState.FAILURE]
    assert "Changes from the run it re-ran" in plain
    assert "The same parameters as" in plain


def test_an_active_run_cannot_be_rerun_yet(boss: Client, broker: str) -> None:
    running = ledger.make_run(RunState.STARTED, params={"failure_rate": 0.5})

    page = boss.get(rerun_url(running))
    sent = boss.post(rerun_url(running), {"failure_rate": "0.1"})

    assert page.status_code == 200
    assert "can be run again once it has" in page.content.decode()
    assert sent.status_code == 409
    assert "This run has not finished yet (started)" in sent.content.decode()
    assert Run.objects.count() == 1


@pytest.mark.parametrize("codenames", [(), ("retry_run",), ("launch_job",)])
def test_it_needs_both_retry_and_launch(
    client: Client, broker: str, codenames: tuple[str, ...]
) -> None:
    user = User.objects.create_user("op", password="x-Secret-123", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    run = ledger.make_run(RunState.FAILURE, params={"failure_rate": 1.0})

    run_page = client.get(run_url(run)).content.decode()
    form_page = client.get(rerun_url(run))
    sent = client.post(rerun_url(run), {"failure_rate": "0.1"})

    assert "Run again with changes" not in run_page
    assert form_page.status_code == 200
    assert "You do not have permission to run this job again" in form_page.content.decode()
    assert sent.status_code == 403
    assert Run.objects.count() == 1
    assert not AuditEntry.objects.exists()


def test_a_plain_task_is_sent_back_to_its_run(boss: Client) -> None:
    plain = ledger.make_run(RunState.FAILURE, job_name="demo.add", params={"x": 1, "y": 2})

    response = boss.get(rerun_url(plain), follow=True)

    assert response.redirect_chain == [(run_url(plain), 302)]
    assert "not a registered job" in response.content.decode()
    assert Run.objects.count() == 1


def test_an_unknown_run_is_404(boss: Client) -> None:
    assert boss.get(reverse("tasks_app:run_rerun", args=["no-such-run"])).status_code == 404
    assert boss.post(reverse("tasks_app:run_rerun", args=["no-such-run"])).status_code == 404


def test_a_queued_run_waiting_for_a_slot_says_since_when(boss: Client) -> None:
    since = datetime(2031, 7, 14, 9, 30, 5, tzinfo=UTC)
    waiting = ledger.make_run(RunState.PENDING, params={"failure_rate": 0.0}, slot_wait_since=since)
    started = ledger.make_run(RunState.STARTED, params={"failure_rate": 0.0}, slot_wait_since=since)
    plain = ledger.make_run(RunState.PENDING, params={"failure_rate": 0.0})

    full = boss.get(run_url(waiting)).content.decode()
    live = boss.get(run_url(waiting), headers={"HX-Request": "true", "HX-Target": "live"})

    line = "(job concurrency limit)"
    assert f'Waiting for a slot since <time datetime="{since.isoformat()}"' in full
    assert "2031-07-14 09:30:05 UTC" in full
    assert line in full
    assert line in live.content.decode()
    assert line not in boss.get(run_url(started)).content.decode()
    assert line not in boss.get(run_url(plain)).content.decode()


def test_the_journey_on_the_real_worker(client: Client, worker: WorkerProcess) -> None:
    boss_user = User.objects.create_superuser("boss", password="x-Secret-123")
    client.force_login(boss_user)
    launched = client.post(
        reverse("tasks_app:launch", args=["demo.sensitive"]),
        {"password": SECRET, "label": "first"},
    )
    original = finished(new_run_after(launched).task_id, timeout=60)
    assert original.state == RunState.SUCCESS

    response = client.post(rerun_url(original), {"password": "", "label": "again"})

    new = finished(new_run_after(response).task_id, timeout=60)
    assert new.state == RunState.SUCCESS
    html = client.get(run_url(new)).content.decode()
    assert "&quot;secret_length&quot;: " + str(len(SECRET)) in html  # the kept secret opened
    assert "&quot;label&quot;: &quot;again&quot;" in html
    assert SECRET not in html
