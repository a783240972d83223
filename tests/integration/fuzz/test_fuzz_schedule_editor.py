"""Fuzzing the schedule editor (POST /schedules/new/ and /schedules/<pk>/edit/) and its htmx
preview (GET /schedules/preview/) with hypothesis.

Guarantees, for any values of every editor field (name, job, kind, cron from a mix of
valid-looking cron fragments, ranges, names and garbage, timezone, every, period, run_at,
start_time, expires, one_off, queue, enabled, description) plus the chosen job's `param-*`
fields and random extra keys, posted by a superuser to a new schedule, a job's schedule, a
schedule with a sensitive parameter, a schedule declared in code, or a plain Celery task's
schedule:

* the answer is never a 5xx;
* invalid input is a 400 with the editor again, and changes nothing: every PeriodicTask column,
  beat's crontab/interval/clocked rows, the audit trail, the run ledger and the broker's queues
  are as they were;
* valid input redirects to the saved schedule's page, with one audit entry, nothing queued,
  a crontab that `parse_cron` reads (in a real time zone), and kwargs that the job's schema
  (`spec.params.validate`) gives back unchanged;
* a plain task's schedule is not editable here: the page says so (200) and nothing changes;
* the preview answers 200 for any query string and changes nothing.

Each example runs in a savepoint rolled back afterwards.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from hypothesis import event, example, given, note, settings
from hypothesis import strategies as st

from tasks_app.jobs.policies import QUEUES
from tasks_app.jobs.registry import all_jobs, get_job
from tasks_app.schedules.cron import parse_cron
from tasks_app.schedules.declared import REAPER
from tasks_app.schedules.definition import PERIODS, Kind
from tests.support.fuzzing import (
    CHARS,
    FUZZ_SETTINGS,
    World,
    examples,
    extra_fields,
    field_pairs,
    form_values,
    future_local,
    hostile_text,
    huge_text,
    mostly,
    plausible_form_value,
    post_form,
    rolled_back,
    seed_schedules,
)

pytestmark = pytest.mark.django_db

JOB_NAMES = sorted(spec.name for spec in all_jobs())
# The editor for a new schedule (twice as often), a job's schedule, one with a sensitive
# parameter, one declared in code, and a plain Celery task's (not editable here).
TARGETS = ("new", "new", "job", "sensitive", "declared", "plain")
ZONES = (
    "UTC", "Europe/Berlin", "America/New_York", "Asia/Kathmandu", "Australia/Lord_Howe",
    "Pacific/Kiritimati", "Pacific/Pago_Pago", "Etc/GMT+12", "Etc/GMT-14", "EST5EDT",
)  # fmt: skip
BAD_ZONES = ("localtime", "Factory", "utc", "Mars/Olympus", "../../etc/passwd", "")

# --- cron ------------------------------------------------------------------------------------

_CRON_FIELDS = ((0, 59, ()), (0, 23, ()), (1, 31, ()),
                (1, 12, ("jan", "feb", "mar", "jun", "dec", "Jan", "DECEMBER")),
                (0, 6, ("sun", "mon", "fri", "sat", "MON", "tuesday")))  # fmt: skip


def _valid_cron_field(low: int, high: int, names: tuple[str, ...]) -> st.SearchStrategy[str]:
    number = st.integers(low, high)
    ranged = st.tuples(number, number).map(lambda t: f"{min(t)}-{max(t)}")
    item = st.one_of(
        st.just("*"),
        number.map(str),
        ranged,
        st.integers(1, high + 5).map(lambda s: f"*/{s}"),
        st.tuples(ranged, st.integers(1, 10)).map(lambda t: f"{t[0]}/{t[1]}"),
        *([st.sampled_from(names)] if names else []),
    )
    return st.lists(item, min_size=1, max_size=3).map(",".join)


CRON_FRAGMENTS = st.one_of(
    st.sampled_from(
        ["*", "*/5", "*/0", "*/", "*/x", "0", "59", "60", "24", "31", "32", "7", "-1", "1-5",
         "5-1", "1-5/2", "0-59/15", "22-2", "jan", "dec", "jan-mar", "mar-jan", "sun", "mon-fri",
         "sat-sun", "L", "?", "#", "5#3", "1,2,3", ",", "1,,2", "1-", "*/5/3", "5/15", "MON",
         "@daily", "007", "\u0661", "*/99999999999999999999", "9" * 30, "\x00"]
    ),
    st.integers(-5, 100).map(str),
    st.tuples(st.integers(0, 70), st.integers(0, 70)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.integers(0, 100).map(lambda s: f"*/{s}"),
    st.text(CHARS, max_size=4),
)  # fmt: skip
VALID_CRONS = st.tuples(*(_valid_cron_field(*f) for f in _CRON_FIELDS)).map(" ".join)
BAD_CRONS = st.one_of(
    st.tuples(
        st.lists(CRON_FRAGMENTS, max_size=7), st.sampled_from([" ", "  ", "\t", " \n "])
    ).map(lambda t: t[1].join(t[0])),
    st.sampled_from(["0 0 29 2 *", "0 0 30 2 *", "0 0 31 4 *", "@hourly", "* * * * * *",
                     "* * * *", "0 3 1-7 * mon", " 0 3 * * * ", "", "9" * 121]),
)  # fmt: skip

# --- the editor's fields -------------------------------------------------------------------

FUTURE = st.integers(1, 10 * 366 * 24 * 60)
TEXT = st.characters(exclude_categories=("Cs", "Cc"))
# Each field as the page sends it when filled in sensibly. (It may still be refused: a cron
# that never fires, an expiry before the start, a required parameter left empty...)
PLAUSIBLE: dict[str, st.SearchStrategy[str]] = {
    "name": st.text(TEXT, min_size=1, max_size=30),
    "job": st.sampled_from(JOB_NAMES),
    "kind": st.sampled_from([Kind.CRONTAB.value, Kind.INTERVAL.value, Kind.ONE_OFF.value]),
    "cron": VALID_CRONS,
    "timezone": st.sampled_from(ZONES),
    "every": st.integers(1, 100).map(str),
    "period": st.sampled_from(PERIODS),
    "run_at": future_local(FUTURE),
    "start_time": st.one_of(st.just(""), future_local(st.integers(-(10**6), 10**6))),
    "expires": st.one_of(st.just(""), future_local(FUTURE)),
    "one_off": st.sampled_from(["on", ""]),
    "queue": st.sampled_from(["", *QUEUES]),
    "enabled": st.sampled_from(["on", ""]),
    "description": st.text(TEXT, max_size=50),
}
# Each field spoiled: near misses for that field (the generic hostile text comes on top).
_MOMENTS = st.sampled_from(
    [
        "0001-01-01T00:00",
        "9999-12-31T23:59",
        "2999-12-31T23:59",
        "1899-12-31T23:59",
        "2026-03-29T02:30",
        "2026-12-31 23:59:59",
    ]
)
SPOILED: dict[str, st.SearchStrategy[str]] = {
    "name": st.one_of(
        st.sampled_from([REAPER, "fuzz job schedule", "fuzz secret schedule", "fuzz plain",
                         " fuzz job schedule ", "x" * 200, "x" * 201, " " * 5, ""]),
        huge_text(2_000),
    ),
    "job": st.sampled_from(["demo.add", "", "nope.job", "DEMO.PROGRESS"]),
    "kind": st.sampled_from([Kind.OTHER.value, "", "CRONTAB", "solar"]),
    "cron": BAD_CRONS,
    "timezone": st.sampled_from(BAD_ZONES),
    "every": st.sampled_from(["-1", "0", "527040", "527041", "31622400", "8784", "367", "1.5",
                              "10" + "0" * 20]),
    "period": st.sampled_from(["weeks", "ms", "", "Minutes"]),
    "run_at": _MOMENTS,
    "start_time": _MOMENTS,
    "expires": st.one_of(_MOMENTS, future_local(st.integers(-(10**6), 0))),
    "one_off": st.sampled_from(["maybe", "off", "2"]),
    "queue": st.sampled_from(["nowhere", "HIGH", " high"]),
    "enabled": st.sampled_from(["maybe", "off", "2"]),
    "description": huge_text(3_000),  # over its 2000 characters
}  # fmt: skip
FIELDS = tuple(PLAUSIBLE)


def _any_value(field: str) -> st.SearchStrategy[str]:
    return mostly(PLAUSIBLE[field], mostly(SPOILED[field], hostile_text(), one_in=2), one_in=3)


def _job_params(name: str, *, plausible: bool) -> st.SearchStrategy[list[tuple[str, str]]]:
    spec = get_job(name)
    fields = [
        field_pairs(
            f"param-{info.name}", plausible_form_value(info) if plausible else form_values(info)
        )
        for info in spec.params.params
    ]
    return st.tuples(*fields).map(lambda groups: [pair for group in groups for pair in group])


# A spoiled field: a near miss, hostile text, or left out (None).
SPOILS = st.sampled_from(FIELDS).flatmap(
    lambda field: st.tuples(st.just(field), st.one_of(SPOILED[field], hostile_text(), st.none()))
)


def _spoil(values: dict[str, str], spoils: list[tuple[str, str | None]]) -> dict[str, str]:
    merged: dict[str, str | None] = {**values, **dict(spoils)}
    return {field: value for field, value in merged.items() if value is not None}


def _editor_data() -> st.SearchStrategy[list[tuple[str, str]]]:
    """The editor's POST. Mostly as the page sends it, every field filled in sensibly, then
    none, one or a few fields spoiled (a near miss, hostile text, or left out); otherwise any
    subset of the fields with any values. Then the job's own parameter fields (or another
    job's, when the chosen job is junk), and now and then extra keys."""
    as_sent = st.builds(
        _spoil,
        st.fixed_dictionaries(PLAUSIBLE),
        mostly(st.just([]), st.lists(SPOILS, min_size=1, max_size=3), one_in=3),
    )
    any_subset = st.fixed_dictionaries({}, optional={f: _any_value(f) for f in FIELDS})

    def with_params(values: dict[str, str]) -> st.SearchStrategy[list[tuple[str, str]]]:
        job = values.get("job", "")
        params = mostly(
            _job_params(job, plausible=True) if job in JOB_NAMES else st.just([]),
            st.sampled_from(JOB_NAMES).flatmap(lambda name: _job_params(name, plausible=False)),
            one_in=3,
        )
        return st.builds(
            lambda params, extra: [*values.items(), *params, *extra],
            params,
            mostly(st.just([]), extra_fields(), one_in=3),
        )

    return mostly(as_sent, any_subset, one_in=4).flatmap(with_params)


# --- fixtures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedules:
    pks: dict[str, int]

    def url(self, target: str) -> str:
        if target == "new":
            return reverse("tasks_app:schedule_new")
        return reverse("tasks_app:schedule_edit", args=[self.pks[target]])


@pytest.fixture
def boss(client: Client) -> Client:
    client.force_login(User.objects.create_superuser("fuzz-boss", password="x-Secret-123"))
    return client


@pytest.fixture
def schedules(boss: Client, broker: str) -> Schedules:
    owner = User.objects.get(username="fuzz-boss")
    return Schedules(seed_schedules(owner, plain_args="[1, 2]"))


# --- the tests -----------------------------------------------------------------------------


# Regressions: each of these answered 500 (OverflowError) before the fix.
_BASE = [("job", "taskdeck.ping"), ("timezone", "UTC"), ("period", "minutes")]
# An interval too long for a timedelta: the service stepped by it before checking its size.
HUGE_INTERVAL = [("name", "far"), ("kind", "interval"), ("every", "1" + "0" * 20), *_BASE]
# A time with no UTC value in its zone: storing it (or forecasting from it) overflowed.
PAST_9999 = [("name", "late"), ("kind", "one_off"), ("run_at", "9999-12-31T23:59"),
             ("job", "taskdeck.ping"), ("timezone", "Etc/GMT+12")]  # fmt: skip
BEFORE_1 = [("name", "early"), ("kind", "crontab"), ("cron", "* * * * *"),
            ("timezone", "Pacific/Kiritimati"), ("start_time", "0001-01-01T00:00"),
            ("expires", "9999-12-31T23:59"), ("job", "demo.progress")]  # fmt: skip


@example(target="new", pairs=HUGE_INTERVAL)
@example(target="new", pairs=PAST_9999)
@example(target="job", pairs=BEFORE_1)
@settings(FUZZ_SETTINGS, max_examples=examples(60))
@given(target=st.sampled_from(TARGETS), pairs=_editor_data())
def test_editor_never_fails_and_saves_only_valid_schedules(
    boss: Client, schedules: Schedules, target: str, pairs: list[tuple[str, str]]
) -> None:
    note(f"POST {schedules.url(target)} ({target}): {pairs!r}")
    with rolled_back():
        before = World.now()
        known = set(PeriodicTask.objects.values_list("pk", flat=True))

        response = post_form(boss, schedules.url(target), pairs, multipart=False)

        assert response.status_code < 500, response.content[:2000]
        event(f"{target}: {response.status_code}")
        after = World.now()
        if target == "plain":
            assert response.status_code == 200
            assert after == before
        elif response.status_code == 302:
            task = PeriodicTask.objects.exclude(pk__in=known).first()
            if target != "new":
                assert task is None
                task = PeriodicTask.objects.get(pk=schedules.pks[target])
            assert task is not None
            assert response["Location"] == reverse("tasks_app:schedule", args=[task.pk])
            assert len(after.schedules) == len(before.schedules) + (target == "new")
            assert after.audit == before.audit + 1
            assert (after.runs, after.queued) == (before.runs, before.queued)
            _assert_stored_schedule_is_valid(task)
        else:
            assert response.status_code == 400
            assert after == before
            assert "<form" in response.content.decode()


def _assert_stored_schedule_is_valid(task: PeriodicTask) -> None:
    if task.crontab is not None:
        row = task.crontab
        parse_cron(
            " ".join((row.minute, row.hour, row.day_of_month, row.month_of_year, row.day_of_week))
        )
        ZoneInfo(str(row.timezone))
    else:
        assert task.interval is not None or task.clocked is not None
    kwargs = json.loads(task.kwargs)
    assert get_job(task.task).params.validate(kwargs) == kwargs
    assert json.loads(task.args) == []


def _preview_query() -> st.SearchStrategy[str]:
    timing = [f for f in FIELDS if f not in ("name", "job", "queue", "description")]
    fields = st.fixed_dictionaries({}, optional={f: _any_value(f) for f in timing}).map(
        lambda values: list(values.items())
    )
    encoded = st.builds(lambda a, b: urlencode([*a, *b]), fields, extra_fields())
    raw = st.text(st.sampled_from("%&=+;#?abcfkinron019_-. "), max_size=40)
    return st.one_of(encoded, encoded, raw)


# Regressions: each answered 500 (OverflowError) before the fix, as in the editor above.
@example(query=urlencode(HUGE_INTERVAL), htmx=True)
@example(query=urlencode(PAST_9999), htmx=True)
@example(query=urlencode([*PAST_9999, ("kind", "crontab"), ("start_time", "9999-12-31T23:59")]),
         htmx=True)  # fmt: skip
@example(query="kind=crontab&cron=%25ff&timezone=%ff", htmx=False)
@settings(FUZZ_SETTINGS, max_examples=examples(50))
@given(query=_preview_query(), htmx=st.booleans())
def test_preview_answers_any_query(
    boss: Client, schedules: Schedules, query: str, htmx: bool
) -> None:
    note(f"GET /schedules/preview/?{query} htmx={htmx}")
    headers = {"HX-Request": "true"} if htmx else {}
    with rolled_back():
        before = World.now()

        url = reverse("tasks_app:schedule_preview")
        response = boss.get(url, QUERY_STRING=query, headers=headers)

        assert response.status_code == 200, response.content[:2000]
        assert World.now() == before
