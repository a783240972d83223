"""Fuzzing the launch form (POST /jobs/<name>/) of every registered job with hypothesis.

Guarantees, for any form data (each parameter field left out, plausible, or hostile: empty,
huge, unicode, control characters, numbers at the edges, dates in odd formats, lists, repeated
keys), any `option-` values, and random extra keys, sent urlencoded or as multipart by a
superuser:

* the answer is never a 5xx;
* it is either a redirect to the new run's page, with exactly one Run recorded, exactly one
  message in the broker, and parameters that `spec.params.validate` gives back unchanged;
* or the form again (400, or 409 for a unique job already queued) with nothing recorded,
  audited or queued, and what was typed still in the fields.

Each example runs in a savepoint rolled back afterwards; messages are counted per example and
purged at the end. No worker runs, so nothing queued is ever executed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from hypothesis import event, example, given, note, settings
from hypothesis import strategies as st

from tasks_app.forms import LaunchOptionsForm
from tasks_app.jobs.policies import QUEUES
from tasks_app.jobs.registry import all_jobs, get_job
from tasks_app.models import Run
from tests.support.fuzzing import (
    FUZZ_SETTINGS,
    World,
    examples,
    extra_fields,
    field_pairs,
    form_values,
    future_local,
    hostile_text,
    mostly,
    post_form,
    rolled_back,
)

pytestmark = pytest.mark.django_db

JOB_NAMES = sorted(spec.name for spec in all_jobs())
# Widgets that show what was typed back as it was typed (not checkboxes, selects, passwords).
SHOWN_AS_TYPED = ("TextInput", "NumberInput", "DateInput", "DateTimeInput", "Textarea")

Case = tuple[str, list[tuple[str, str]], bool]


def _options() -> st.SearchStrategy[list[tuple[str, str]]]:
    fields = LaunchOptionsForm(prefix="option")
    queue = mostly(st.sampled_from(["", *QUEUES]), hostile_text(), one_in=4)
    # Up to 50000 s: past the longest delay allowed (the broker's visibility timeout - 5 min).
    delay = mostly(st.one_of(st.just(""), st.integers(0, 50_000).map(str)), hostile_text())
    start = mostly(
        st.one_of(st.just(""), future_local(st.integers(-120, 2_000))), hostile_text(), one_in=4
    )
    names = {name: fields.add_prefix(name) for name in fields.fields}
    return st.fixed_dictionaries(
        {}, optional={names["queue"]: queue, names["delay_seconds"]: delay,
                      names["start_at"]: start},
    ).map(lambda values: list(values.items()))  # fmt: skip


def _form_for(name: str) -> st.SearchStrategy[Case]:
    spec = get_job(name)
    fields = [field_pairs(info.name, form_values(info)) for info in spec.params.params]
    return st.builds(
        lambda params, options, extra, order, multipart: (
            name,
            order([pair for field in params for pair in field] + options + extra),
            multipart,
        ),
        st.tuples(*fields),
        _options(),
        extra_fields(),
        st.sampled_from([list, lambda pairs: list(reversed(pairs))]),
        st.booleans(),
    )


cases = st.sampled_from(JOB_NAMES).flatmap(_form_for)


def _every_job_once_empty(test: Callable[..., Any]) -> Callable[..., Any]:
    """An empty POST for every job: each is tried at least once, whatever hypothesis draws."""
    for name in JOB_NAMES:
        test = example(case=(name, [], False))(test)
    return test


@pytest.fixture
def boss(client: Client, broker: str) -> Client:
    """Signed in as a superuser; what it queues, the broker fixture empties afterwards."""
    client.force_login(User.objects.create_superuser("fuzz-boss", password="x-Secret-123"))
    return client


# Edges tried every time (all refused cleanly from the start): integers past Python's 4300-digit
# conversion limit and floats past infinity, a start time at the end of the calendar, dates at
# both ends of it, NUL characters.
@_every_job_once_empty
@example(case=("demo.progress", [("steps", "9" * 5000), ("step_seconds", "1e309")], False))
@example(case=("demo.progress", [("option-start_at", "9999-12-31T23:59")], False))
@example(case=("demo.progress", [("steps", "1"), ("option-delay_seconds", "9" * 400)], False))
@example(case=("taskdeck.export_runs", [("since", "0001-01-01"), ("until", "9999-12-31")], True))
@example(case=("taskdeck.send_email", [("to", "a@b.c\n\x00"), ("subject", "\x00")], True))
@settings(FUZZ_SETTINGS, max_examples=examples(80))
@given(case=cases)
def test_launch_form_never_fails_and_queues_only_valid_input(boss: Client, case: Case) -> None:
    name, pairs, multipart = case
    note(f"POST /jobs/{name}/ {'multipart' if multipart else 'urlencoded'}: {pairs!r}")
    spec = get_job(name)
    url = reverse("tasks_app:launch", args=[name])
    with rolled_back():
        before = World.now()

        response = post_form(boss, url, pairs, multipart=multipart)

        assert response.status_code < 500, response.content[:2000]
        event(f"status {response.status_code}")
        after = World.now()
        if response.status_code == 302:
            run = Run.objects.order_by("-pk").first()
            assert run is not None
            assert response["Location"] == reverse("tasks_app:run", args=[run.task_id])
            assert after.runs == before.runs + 1
            assert after.audit == before.audit + 1
            assert after.messages == before.messages + 1
            assert run.job_name == name
            assert spec.params.validate(run.params) == run.params
        else:
            assert response.status_code in (400, 409), response.status_code
            assert after == before  # nothing recorded, audited or queued
            html = response.content.decode()
            assert 'method="post"' in html.lower()
            _assert_typed_values_kept(spec.params.form().fields, pairs, html)


def _assert_typed_values_kept(
    fields: dict[str, Any], pairs: list[tuple[str, str]], html: str
) -> None:
    """Spot check: the first parameter typed (a single value, in a widget that shows it as
    typed) is on the page again, escaped."""
    sent = dict(pairs)  # the last value of each key, as the form reads it
    for field_name, field in fields.items():
        if type(field.widget).__name__ not in SHOWN_AS_TYPED or field_name not in sent:
            continue
        value = sent[field_name]
        if value:
            assert escape(value) in html, f"{field_name}={value[:200]!r} is not shown again"
            return
