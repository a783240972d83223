"""Fuzzing the JSON API with hypothesis, with a real token (a superuser's).

Guarantees, for any body (recursive JSON of every type, objects shaped like the real ones with
wrong types, unknown fields, nested junk, huge numbers, NaN and infinities, NaN-like strings;
and raw bodies that are not JSON at all, under any content type) and any query string:

* POST /api/v1/runs, POST /api/v1/schedules, PATCH /api/v1/schedules/<pk>,
  POST /api/v1/runs/retry and GET /api/v1/runs never answer 5xx;
* every error is JSON with `detail` (text) and `errors` (field -> list of messages);
* after an error nothing was recorded, audited, scheduled or queued: the Run, AuditEntry and
  PeriodicTask rows (every column), beat's timing rows and the broker's queue depths are as
  they were; a GET changes none of them, whatever it answers;
* a successful launch records exactly one run and queues exactly one message, with parameters
  the job's schema gives back unchanged; a successful retry queues one message per run retried;
  a successful schedule write stores a crontab `parse_cron` reads and kwargs the job's schema
  gives back unchanged, and queues nothing.

Each example runs in a savepoint rolled back afterwards; queued messages are counted, then
purged at the end. No worker runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import PeriodicTask
from hypothesis import event, example, given, note, settings
from hypothesis import strategies as st

from tasks_app.jobs.policies import QUEUES
from tasks_app.jobs.registry import all_jobs, get_job
from tasks_app.models import Run, RunState
from tasks_app.schedules.cron import parse_cron
from tasks_app.schedules.declared import REAPER
from tasks_app.schedules.definition import PERIODS
from tasks_app.tokens import issue_token
from tests.support.fuzzing import (
    CHARS,
    FUZZ_SETTINGS,
    World,
    examples,
    iso_moment,
    json_error,
    json_params,
    json_values,
    mostly,
    odd_moments,
    rolled_back,
    seed_schedules,
)

if TYPE_CHECKING:  # what the test client answers (django-stubs' name for it)
    from django.test.client import _MonkeyPatchedWSGIResponse as Response

pytestmark = pytest.mark.django_db

API = "/api/v1"
JOB_NAMES = sorted(spec.name for spec in all_jobs())
STATES = [state.value for state in RunState]
SOURCES = ["form", "api", "schedule", "code", "retry", ""]
# The runs in the database: retriable, not retriable, and of a job no longer registered.
RUNS: tuple[tuple[str, RunState, dict[str, Any]], ...] = (
    ("demo.flaky", RunState.FAILURE, {"failure_rate": 1.0}),
    ("demo.progress", RunState.LOST, {"steps": 3, "step_seconds": 0.0}),
    ("demo.progress", RunState.SUCCESS, {"steps": 3, "step_seconds": 0.0}),
    ("gone.job", RunState.FAILURE, {}),
)
TASK_IDS = tuple(f"fuzz-{n:04d}-0000-0000-0000-000000000000" for n in range(len(RUNS)))


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The plausible value most of the time, any JSON otherwise."""
    return mostly(strategy, json_values)


def _with_junk(objects: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """Objects, now and then with unknown fields, or replaced by any JSON at all."""
    junk = st.dictionaries(st.text(CHARS, max_size=10), json_values, min_size=1, max_size=2)
    return mostly(
        objects, st.one_of(st.builds(lambda a, b: {**a, **b}, objects, junk), json_values)
    )


def _moment(minutes: st.SearchStrategy[int]) -> st.SearchStrategy[Any]:
    return mostly(iso_moment(minutes), odd_moments())


FUTURE = _moment(st.integers(1, 10 * 366 * 24 * 60))

# --- bodies ----------------------------------------------------------------------------------

OPTIONS = _with_junk(
    st.fixed_dictionaries(
        {},
        optional={
            "queue": _maybe(st.sampled_from([*QUEUES, "", "nowhere", None])),
            "countdown": _maybe(st.one_of(st.floats(), st.integers(-10, 50_000))),
            "eta": _moment(st.integers(-60, 2_000)),
            "priority": _maybe(st.integers(-2, 12)),
        },
    )
)


def _launch_for(name: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"job": st.just(name)},
        optional={"params": json_params(get_job(name).params.params), "options": OPTIONS},
    )


LAUNCHES = _with_junk(
    mostly(
        st.sampled_from(JOB_NAMES).flatmap(_launch_for),
        st.fixed_dictionaries(
            {}, optional={"job": json_values, "params": json_values, "options": json_values}
        ),
    )
)

CRONS = mostly(
    st.sampled_from(["30 2 * * 1-5", "*/5 * * * *", "0 0 1 jan *", "0 12 * * mon-fri",
                     "0 0 29 2 *", "0 3 1-7 * mon", " 0  3 * * * "]),
    st.one_of(
        st.sampled_from(["0 0 30 2 *", "61 * * * *", "* * * *", "* * * * * *", "@daily",
                         "5/15 * * * *", "0 22-2 * * *", "*/0 * * * *", "", " \t ", "9" * 121]),
        st.lists(st.sampled_from(["*", "*/5", "0", "1-5", "jan", "mon", "60", "x", "-", ","]),
                 min_size=5, max_size=5).map(" ".join),
        json_values,
    ),
)  # fmt: skip
ZONES = mostly(
    st.sampled_from(["UTC", "Europe/Berlin", "Etc/GMT+12", "Pacific/Kiritimati"]),
    st.one_of(st.sampled_from(["localtime", "Mars/Olympus", "", "x" * 65, "utc"]), json_values),
)


def _timing(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """A timing of `kind`, with the fields it needs (and, now and then, the others)."""
    fields: dict[str, st.SearchStrategy[Any]] = {
        "cron": CRONS,
        "timezone": ZONES,
        "every": mostly(
            st.integers(1, 600), st.sampled_from([-1, 0, 527_041, 2**63, 10**20, 1.5, "5"])
        ),
        "period": _maybe(st.sampled_from(PERIODS)),
        "run_at": FUTURE,
    }
    needs = {"crontab": ("cron", "timezone"), "interval": ("every", "period"),
             "one_off": ("run_at",)}  # fmt: skip
    needed = needs.get(kind, ()) if isinstance(kind, str) else ()
    return st.fixed_dictionaries(
        {"kind": st.just(kind), **{k: fields[k] for k in needed}},
        optional={k: v for k, v in fields.items() if k not in needed},
    )


TIMINGS = _with_junk(
    mostly(
        st.sampled_from(["crontab", "interval", "one_off"]).flatmap(_timing),
        st.one_of(st.sampled_from(["other", "", "CRONTAB"]), json_values).flatmap(_timing),
    )
)
_SCHEDULE_FIELDS = {
    "description": _maybe(st.text(CHARS, max_size=30)),
    "enabled": _maybe(st.booleans()),
    "start_time": _moment(st.integers(-(10**6), 10**6)),
    "expires": FUTURE,
    "one_off": _maybe(st.booleans()),
    "queue": _maybe(st.sampled_from([*QUEUES, ""])),
}
_NAMES = mostly(
    st.text(CHARS, min_size=1, max_size=20),
    st.one_of(
        st.sampled_from([REAPER, "fuzz job schedule", "x" * 200, "x" * 201, " ", "a\x00b"]),
        json_values,
    ),
)


def _schedule_for(name: str, *, required: bool) -> st.SearchStrategy[dict[str, Any]]:
    given = {"name": _NAMES, "job": st.just(name), "timing": TIMINGS}
    optional = {"params": json_params(get_job(name).params.params), **_SCHEDULE_FIELDS}
    if required:
        return st.fixed_dictionaries(given, optional=optional)
    return st.fixed_dictionaries({}, optional={**given, **optional})


NEW_SCHEDULES = _with_junk(
    st.sampled_from(JOB_NAMES).flatmap(lambda name: _schedule_for(name, required=True))
)
SCHEDULE_PATCHES = _with_junk(
    st.sampled_from(JOB_NAMES).flatmap(lambda name: _schedule_for(name, required=False))
)

FILTERS = _with_junk(
    st.fixed_dictionaries(
        {},
        optional={
            "state": _maybe(st.lists(_maybe(st.sampled_from(STATES)), max_size=3)),
            "job": _maybe(st.sampled_from([*JOB_NAMES, "gone.job", ""])),
            "source": _maybe(st.sampled_from(SOURCES)),
            "launched_by": _maybe(st.text(CHARS, max_size=10)),
            "schedule": _maybe(st.text(CHARS, max_size=10)),
            "since": _moment(st.integers(-(10**6), 10)),
            "until": _moment(st.integers(-10, 10**6)),
            "q": _maybe(st.text(CHARS, max_size=10)),
        },
    )
)
RETRIES = mostly(
    st.one_of(
        st.fixed_dictionaries(
            {"task_ids": st.lists(_maybe(st.sampled_from(TASK_IDS)), max_size=5)}
        ),
        st.fixed_dictionaries({"filter": FILTERS}),
    ),
    _with_junk(
        st.fixed_dictionaries({}, optional={"task_ids": json_values, "filter": json_values})
    ),
)

RAW_BODIES = st.one_of(
    st.binary(max_size=200),
    st.text(CHARS, max_size=200).map(str.encode),
    st.sampled_from(
        [b"", b"{", b"}", b"[]", b'"job"', b"null", b"{'job': 1}", b'{"job": "demo.progress",}',
         b'{"job": NaN}', b'{"job": "demo.progress", "params": {"steps": 1e999}}',
         b'{"job": "demo.progress", "params": {"steps": ' + b"9" * 4400 + b"}}",
         b'{"job": "demo.progress", "job": "taskdeck.ping"}', b"\xff\xfe{}", b"\xef\xbb\xbf{}",
         b'{"job": "demo.\xff"}', b"[" * 5_000 + b"]" * 5_000,
         b'{"a":' * 3_000 + b"1" + b"}" * 3_000]
    ),
    # Nested deeper than Python's recursion limit lets anything recursive walk it.
    st.integers(1, 3_000).map(
        lambda depth: b'{"job": "demo.progress", "params": {"steps": '
        + b"[" * depth + b"]" * depth + b"}}"
    ),
)  # fmt: skip
CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "application/json; charset=latin-1",
     "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
)  # fmt: skip


def _body(structured: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[bytes, str]]:
    """A JSON body (any JSON: NaN and infinities written as Python writes them) or raw bytes."""
    as_json = structured.map(lambda value: (json.dumps(value).encode(), "application/json"))
    return mostly(as_json, st.tuples(RAW_BODIES, CONTENT_TYPES), one_in=5)


# --- fixtures --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Api:
    client: Client
    token: str
    schedules: dict[str, int]

    def send(self, method: str, path: str, body: bytes, content_type: str) -> Response:
        """The body's bytes as they are (client.post would re-encode them to the charset the
        content type names)."""
        note(f"{method} {API}{path} ({content_type or 'no content type'}): {body!r}")
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.client.generic(
            method, API + path, body, content_type=content_type, headers=headers
        )


@pytest.fixture
def api(client: Client, broker: str) -> Api:
    boss = User.objects.create_superuser("fuzz-boss", password="x-Secret-123")
    now = timezone.now()
    for task_id, (job_name, state, params) in zip(TASK_IDS, RUNS, strict=True):
        Run.objects.create(
            task_id=task_id, job_name=job_name, state=state, queued_at=now, params=params
        )
    pks = {
        **seed_schedules(boss),
        "missing": 10**9,
        "huge": 2**70,
    }
    return Api(client, issue_token(boss, "fuzz")[1], pks)


# --- checks ----------------------------------------------------------------------------------


def _refused(response: Response, before: World) -> None:
    assert response.status_code < 500, response.content[:3000]
    event(f"{response.status_code}")
    json_error(response)
    assert World.now() == before


def _assert_stored_schedule_is_valid(pk: int) -> None:
    task = PeriodicTask.objects.get(pk=pk)
    if task.crontab is not None:
        row = task.crontab
        parse_cron(
            " ".join((row.minute, row.hour, row.day_of_month, row.month_of_year, row.day_of_week))
        )
        ZoneInfo(str(row.timezone))
    kwargs = json.loads(task.kwargs)
    assert get_job(task.task).params.validate(kwargs) == kwargs


# --- the tests -------------------------------------------------------------------------------


def _json(value: Any) -> tuple[bytes, str]:
    return json.dumps(value).encode(), "application/json"


# Regressions, and the contract "every error is JSON with detail and errors" at its edges:
# a body ninja cannot parse answered {"detail"} alone; parameters nested deeper than the
# recursion limit answered 500 (RecursionError). Bodies Python's parser refuses: an integer
# of 4400 digits, nesting past the recursion limit, a truncated object, text/plain.
# Hypothesis runs tests with a recursion limit of about 2000 (Python's default: 1000): this
# depth parses, then broke the walk over the parameters, which takes two frames per level.
DEEP = b'{"job": "demo.progress", "params": {"steps": ' + b"[" * 1500 + b"]" * 1500 + b"}}"


@example(body=(DEEP, "application/json"))
@example(body=(b'{"job": "demo.progress", "params": {"steps": ' + b"9" * 4400 + b"}}",
               "application/json"))  # fmt: skip
@example(body=(b"[" * 5_000 + b"]" * 5_000, "application/json"))
@example(body=(b"{", "application/json"))
@example(body=(b'{"job": "demo.progress"}', "text/plain"))
@example(body=_json({"job": "demo.progress", "options": {"eta": "0001-01-01T00:00:00+14:00"}}))
@settings(FUZZ_SETTINGS, max_examples=examples(80))
@given(body=_body(LAUNCHES))
def test_launch(api: Api, body: tuple[bytes, str]) -> None:
    with rolled_back():
        before = World.now()

        response = api.send("POST", "/runs", *body)

        if response.status_code != 201:
            _refused(response, before)
            return
        event("201")
        run = Run.objects.get(task_id=response.json()["task_id"])
        after = World.now()
        assert (after.runs, after.messages) == (before.runs + 1, before.messages + 1)
        assert get_job(run.job_name).params.validate(run.params) == run.params


# Regressions: an interval too long for a timedelta, and a time with no UTC value, answered
# 500 (OverflowError); a NUL character answered 500 on PostgreSQL (which cannot store it).
HUGE_INTERVAL = {"kind": "interval", "every": 10**20, "period": "days"}
PAST_9999 = {"kind": "one_off", "run_at": "9999-12-31T23:59:59-12:00"}
EVERY_MINUTE = {"kind": "crontab", "cron": "* * * * *"}


@example(body=_json({"name": "far", "job": "taskdeck.ping", "timing": HUGE_INTERVAL}))
@example(body=_json({"name": "late", "job": "taskdeck.ping", "timing": PAST_9999}))
@example(body=_json({"name": "a\x00b", "job": "taskdeck.ping", "timing": EVERY_MINUTE}))
@example(body=_json({"name": "b", "job": "a\x00b", "timing": EVERY_MINUTE}))
@settings(FUZZ_SETTINGS, max_examples=examples(60))
@given(body=_body(NEW_SCHEDULES))
def test_create_schedule(api: Api, body: tuple[bytes, str]) -> None:
    with rolled_back():
        before = World.now()

        response = api.send("POST", "/schedules", *body)

        if response.status_code != 201:
            _refused(response, before)
            return
        event("201")
        after = World.now()
        assert len(after.schedules) == len(before.schedules) + 1
        assert (after.runs, after.queued) == (before.runs, before.queued)
        _assert_stored_schedule_is_valid(response.json()["id"])


@example(target="job", body=_json({"timing": HUGE_INTERVAL}))
@example(target="sensitive", body=_json({"expires": "9999-12-31T23:59:59-12:00"}))
@example(target="job", body=_json({"name": "\x00"}))
@example(target="plain", body=_json({"job": "a\x00b"}))
@example(target="huge", body=_json({}))
@settings(FUZZ_SETTINGS, max_examples=examples(60))
@given(
    target=st.sampled_from(["job", "sensitive", "declared", "plain", "missing", "huge"]),
    body=_body(SCHEDULE_PATCHES),
)
def test_change_schedule(api: Api, target: str, body: tuple[bytes, str]) -> None:
    pk = api.schedules[target]
    with rolled_back():
        before = World.now()

        response = api.send("PATCH", f"/schedules/{pk}", *body)

        if response.status_code != 200:
            _refused(response, before)
            return
        event("200")
        after = World.now()
        assert len(after.schedules) == len(before.schedules)
        assert (after.runs, after.queued) == (before.runs, before.queued)
        if target != "plain":
            _assert_stored_schedule_is_valid(pk)


# Regressions: a time with no UTC value answered 500 (OverflowError); NUL characters
# answered 500 on PostgreSQL.
@example(body=_json({"task_ids": [TASK_IDS[0]]}))
@example(body=_json({"filter": {"since": "0001-01-01T00:00:00+14:00"}}))
@example(body=_json({"task_ids": ["\x00"]}))
@example(body=_json({"filter": {"q": "\x00", "job": "\x00"}}))
@settings(FUZZ_SETTINGS, max_examples=examples(50))
@given(body=_body(RETRIES))
def test_retry_many(api: Api, body: tuple[bytes, str]) -> None:
    with rolled_back():
        before = World.now()

        response = api.send("POST", "/runs/retry", *body)

        if response.status_code != 200:
            _refused(response, before)
            return
        retried = response.json()["retried"]
        event(f"200, {len(retried)} retried")
        after = World.now()
        assert after.runs == before.runs + len(retried)
        assert after.messages == before.messages + len(retried)


_QUERY_KEYS = st.one_of(
    st.sampled_from(["state", "job", "source", "launched_by", "schedule", "since", "until", "q",
                     "cursor", "limit"]),
    st.text(CHARS, min_size=1, max_size=8),
)  # fmt: skip
_QUERY_VALUES = st.one_of(
    st.sampled_from([*STATES, *SOURCES, *JOB_NAMES, "0", "1", "200", "201", "-1", "1e3",
                     "9" * 30, "garbage", "eyJ4IjoxfQ", "2026-12-01T09:00Z", "2026-12-01T09:00",
                     "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00", "\x00", ""]),
    st.text(CHARS, max_size=20),
    odd_moments().map(str),
    iso_moment(st.integers(-(10**6), 10**6)),
)  # fmt: skip
QUERIES = st.one_of(
    st.lists(st.tuples(_QUERY_KEYS, _QUERY_VALUES), max_size=6).map(urlencode),
    st.text(st.sampled_from("%&=+;#?abcfkinron019_-. "), max_size=40),
)


# Regressions: NUL characters answered 500 on PostgreSQL; made-up cursors (a time with no
# UTC value, an id past 64 bits) and times with no UTC value answered 500 (OverflowError);
# more query parameters than Django reads answered an HTML 400.
@example(query="q=%00")
@example(query="cursor=MDAwMS0wMS0wMVQwMDowMDowMCsxNDowMHwx")
@example(query="cursor=MjAyNi0wMS0wMVQwMDowMDowMCswMDowMHw5OTk5OTk5OTk5OTk5OTk5OTk5OQ")
@example(query="cursor=OTk5OS0xMi0zMVQyMzo1OTo1OS0xMjowMHwx")
@example(query="until=9999-12-31T23:59:59-12:00")
@example(query="since=0001-01-01T00:00:00%2B14:00")
@example(query="limit=" + "9" * 5000)
@example(query="state=PENDING&" * 1_001)
@settings(FUZZ_SETTINGS, max_examples=examples(60))
@given(query=QUERIES)
def test_history(api: Api, query: str) -> None:
    note(f"GET {API}/runs?{query}")
    with rolled_back():
        before = World.now()

        response = api.client.get(
            f"{API}/runs", QUERY_STRING=query, headers={"Authorization": f"Bearer {api.token}"}
        )

        assert response.status_code < 500, response.content[:3000]
        event(f"{response.status_code}")
        assert World.now() == before
        if response.status_code == 200:
            assert set(response.json()) == {"items", "next_cursor"}
        else:
            json_error(response)
