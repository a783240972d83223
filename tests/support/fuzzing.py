"""Shared pieces of the fuzz tests (tests/integration/fuzz/): hypothesis strategies for
hostile form values and JSON, the state that must not move when input is refused, and a
per-example savepoint so every generated example starts from the same database.

Generated text never holds lone surrogates (Unicode category Cs): no client can send them, since
they cannot be encoded as UTF-8, so the test client would fail before the app sees anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
)
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tasks_app import services
from tasks_app.jobs.params import ParamInfo
from tasks_app.models import AuditEntry, Run
from tasks_app.schedules.declared import REAPER
from tasks_app.schedules.definition import Kind, ScheduleDefinition, Timing
from tasks_app.services import Actor
from tasks_app.worker.broker import queue_depths

if TYPE_CHECKING:  # what the test client answers (django-stubs' name for it)
    from django.test.client import _MonkeyPatchedWSGIResponse as Response


# Each example is a few requests through the whole stack: no per-example deadline, and
# the fixtures (client, user, token, broker) are reused on purpose, the database being reset
# by a savepoint per example (`rolled_back`). A failure prints its input (tests `note` it:
# this hypothesis under pytest prints the arguments of the failing call empty) and a
# @reproduce_failure blob.
def examples(full: int) -> int:
    """How many examples a fuzz test tries: `full` in `make test` and CI, a fraction of it in
    `make test-fast` (TASKDECK_FUZZ_SCALE=0.2), the edit loop, which must stay under a minute.
    Never fewer than 5, so every strategy still runs."""
    return max(5, round(full * fuzz_scale()))


def fuzz_scale() -> float:
    """1 in `make test` and CI; below 1 in `make test-fast` (see `examples`)."""
    return float(os.environ.get("TASKDECK_FUZZ_SCALE", "1"))


FUZZ_SETTINGS = settings(
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

CHARS = st.characters(exclude_categories=["Cs"])
CONTROL = st.characters(categories=("Cc", "Cf", "Zs", "Zl", "Zp"))

EDGE_NUMBERS = (
    "0", "-0", "1", "-1", "+5", "5.", ".5", " 7 ", "007", "1_000", "0x10", "0o7", "0b1", "1e3",
    "2147483647", "2147483648", "-2147483649", "9223372036854775807", "9223372036854775808",
    "-9223372036854775809", "1e308", "1e309", "-1e309", "5e-324", "1e-400", "0.1",
    "0.30000000000000004", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1,5", "1.5.5",
    "\u0661\u0662", "\uff15", "\u00bd", "\u216b", "1" * 400, "9" * 5000, "-" + "9" * 4301,
)  # fmt: skip
ODD_DATES = (
    "2026-02-30", "2026-13-01", "2026-00-10", "0000-00-00", "0001-01-01", "9999-12-31",
    "10000-01-01", "-2026-01-01", "31/12/2026", "12/31/2026", "2026/12/31", "31.12.2026",
    "20261231", "2026-W01-1", "2026-365", "2026-12-31T25:00", "2026-12-31T23:60",
    "2026-03-29T02:30", "2026-10-25T02:30", "2026-12-31T23:59:59.999999999",
    "2026-12-31 23:59:59+14:00", "2026-12-31T00:00:00Z", "2026-12-31T00:00:00-12:00",
    "0001-01-01T00:00", "9999-12-31T23:59", "9999-12-31T23:59:59", "yesterday", "now",
    "1e10", "   2026-01-01   ", "2026-01-01\x00",
)  # fmt: skip
WORDS = (
    "on", "off", "true", "false", "True", "yes", "no", "maybe", "null", "None", "undefined",
    "[]", "{}", "[1, 2]", '{"a": 1}', "<script>alert(1)</script>", "' OR 1=1 --", "%00", "%s",
    "{{ 7*7 }}", "../../etc/passwd", "\u202eevil", "\ufeff", "a\x00b", "\x00", "\r\n", " ",
    "PENDING", "FAILURE", "high", "default", "low", "demo.progress", "taskdeck.ping",
)  # fmt: skip


def mostly(
    plausible: st.SearchStrategy[Any], junk: st.SearchStrategy[Any], *, one_in: int = 6
) -> st.SearchStrategy[Any]:
    """`junk` one time in `one_in`, `plausible` otherwise. (`st.one_of` cannot weigh them: it
    flattens nested one_ofs and picks a branch uniformly, so a junk strategy made of many
    branches would drown the plausible one, and valid input would hardly ever be sent.)"""
    return st.integers(1, one_in).flatmap(lambda n: junk if n == 1 else plausible)


def huge_text(max_repeat: int = 20_000) -> st.SearchStrategy[str]:
    """Long values, well under Django's 2.5 MB body limit even with several of them."""
    pieces = st.sampled_from(["9", "a", "é", "😀", "\x00", " ", "\n", "-1", "<b>"])
    return st.builds(lambda piece, n: piece * n, pieces, st.integers(1_000, max_repeat))


def hostile_text() -> st.SearchStrategy[str]:
    """Anything a person (or a script) could type into one form field."""
    return st.one_of(
        st.just(""),
        st.text(CHARS, max_size=40),
        st.text(CONTROL, min_size=1, max_size=8),
        st.sampled_from(EDGE_NUMBERS),
        st.integers().map(str),
        st.floats().map(str),
        st.sampled_from(ODD_DATES),
        st.dates().map(date.isoformat),
        st.datetimes().map(datetime.isoformat),
        st.datetimes().map(lambda d: d.strftime("%Y-%m-%dT%H:%M")),
        st.sampled_from(WORDS),
        huge_text(),
        st.lists(st.text(CHARS, max_size=12), max_size=5).map("\n".join),
    )


def future_local(minutes: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    """A datetime-local value (as the browser sends it) that many minutes from now."""
    return minutes.map(
        lambda m: (datetime.now(UTC) + timedelta(minutes=m)).strftime("%Y-%m-%dT%H:%M")
    )


def plausible_form_value(info: ParamInfo) -> st.SearchStrategy[list[str]]:
    """Values the parameter's own field would accept (most of the time): a valid launch now
    and then, so both branches (queued, refused) are exercised. A list: one form value, or
    several (checkboxes of a multiple choice)."""
    low = -(10**6) if info.minimum is None else info.minimum
    high = 10**6 if info.maximum is None else info.maximum
    kind = info.type_label.removeprefix("list[").removesuffix("]")
    one: st.SearchStrategy[str]
    if info.choices is not None:
        one = st.sampled_from([str(value) for value, _label in info.choices])
    elif kind == "int":
        one = st.integers(int(low), int(high)).map(str)
    elif kind in ("float", "decimal"):
        one = st.floats(low, high, allow_nan=False, allow_infinity=False).map(str)
    elif kind == "bool":
        one = st.sampled_from(["on", "true", "false", ""])
    elif kind == "date":
        one = st.dates().map(date.isoformat)
    elif kind == "datetime":
        one = future_local(st.integers(1, 10**6))
    else:
        one = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=30)
    if info.many and info.choices is not None:
        return st.lists(one, max_size=4, unique=True)
    if info.many:
        return st.lists(one, min_size=1, max_size=4).map(lambda items: ["\n".join(items)])
    return one.map(lambda value: [value])


def form_values(info: ParamInfo) -> st.SearchStrategy[list[str]]:
    """One field's values in a POST: left out, plausible, or hostile (once or repeated)."""
    return mostly(
        st.one_of(st.just([]), plausible_form_value(info), plausible_form_value(info)),
        st.lists(hostile_text(), min_size=1, max_size=3),
        one_in=4,
    )


def field_pairs(
    key: str, values: st.SearchStrategy[list[str]]
) -> st.SearchStrategy[list[tuple[str, str]]]:
    """A field's values as the (key, value) pairs of a POST."""
    return values.map(lambda drawn: [(key, value) for value in drawn])


def extra_fields() -> st.SearchStrategy[list[tuple[str, str]]]:
    """Keys no form asks for, some near the real ones."""
    keys = st.one_of(
        st.text(CHARS, min_size=1, max_size=12),
        st.sampled_from(
            ["csrfmiddlewaretoken", "option-", "option-priority", "param-", "param-x", "id",
             "pk", "user", "actor", "source", "__all__", "job", "params", "kwargs", "args",
             "task_id", "state"]
        ),
    )  # fmt: skip
    return st.lists(st.tuples(keys, hostile_text()), max_size=4)


def post_form(
    client: Client, url: str, pairs: Sequence[tuple[str, str]], *, multipart: bool, **extra: Any
) -> Response:
    """POST `pairs` (repeated keys kept) urlencoded, or as multipart when every key can be put
    in a multipart header (the test client does not escape quotes or line breaks there)."""
    safe = all(not any(c in key for c in '"\r\n\\') for key, _ in pairs)
    if multipart and safe:
        grouped: dict[str, list[str]] = {}
        for key, value in pairs:
            grouped.setdefault(key, []).append(value)
        return client.post(url, grouped, **extra)
    body = urlencode(list(pairs))
    return client.post(url, body, content_type="application/x-www-form-urlencoded", **extra)


# --- JSON ------------------------------------------------------------------------------------

NAN_LIKE = (
    "NaN", "nan", "Infinity", "-Infinity", "inf", "1e999", "-1e999", "0x1F", "1_000", "",
    " ", "null", "true", "[]", "{}", "2026-13-45T99:99Z", "2026-12-01T09:00", "9" * 30,
    "\x00", "\u0000x", "😀",
)  # fmt: skip
BIG_INTS = (2**31, 2**53 + 1, 2**63, -(2**63) - 1, 2**64, 10**30, -(10**30), 10**300)

json_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(BIG_INTS),
    st.floats(),  # NaN and infinities too: json.dumps writes them, Python's parser reads them
    st.text(CHARS, max_size=20),
    st.sampled_from(NAN_LIKE),
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(CHARS, max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def plausible_json_value(info: ParamInfo) -> st.SearchStrategy[Any]:
    """A JSON value the parameter accepts, most of the time."""
    low = -(10**6) if info.minimum is None else info.minimum
    high = 10**6 if info.maximum is None else info.maximum
    kind = info.type_label.removeprefix("list[").removesuffix("]")
    one: st.SearchStrategy[Any]
    if info.choices is not None:
        one = st.sampled_from([value for value, _label in info.choices])
    elif kind == "int":
        one = st.integers(int(low), int(high))
    elif kind in ("float", "decimal"):
        one = st.floats(low, high, allow_nan=False, allow_infinity=False)
    elif kind == "bool":
        one = st.booleans()
    elif kind == "date":
        one = st.dates().map(date.isoformat)
    elif kind == "datetime":
        one = st.datetimes(timezones=st.just(UTC)).map(datetime.isoformat)
    else:
        one = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=30)
    if info.many:
        return st.lists(one, max_size=4)
    return one


def json_params(params: Sequence[ParamInfo]) -> st.SearchStrategy[Any]:
    """A job's `params` object: plausible, wrong types, unknown names, or not an object."""
    names = [p.name for p in params]
    plausible = st.fixed_dictionaries(
        {}, optional={p.name: st.one_of(plausible_json_value(p), json_values) for p in params}
    )
    junk_keys = st.dictionaries(
        st.one_of(st.sampled_from(names or ["x"]), st.text(CHARS, max_size=8)),
        json_values,
        max_size=3,
    )
    return st.one_of(
        plausible,
        plausible,
        st.builds(lambda a, b: {**a, **b}, plausible, junk_keys),
        json_values,
    )


def iso_moment(minutes: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    """ISO 8601 with a zone, as the API takes times, that many minutes from now."""
    return st.builds(
        lambda m, zone: (datetime.now(UTC) + timedelta(minutes=m)).astimezone(zone).isoformat(),
        minutes,
        st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))]),
    )


def odd_moments() -> st.SearchStrategy[Any]:
    """Times at the edges, naive, in odd forms, or not times at all."""
    return st.one_of(
        st.sampled_from(
            [
                "0001-01-01T00:00:00+14:00",
                "0001-01-01T00:00:00Z",
                "9999-12-31T23:59:59-12:00",
                "9999-12-31T23:59:59Z",
                "9999-12-31T23:59:59+14:00",
                "2026-12-01T09:00",
                "2026-12-01T09:00Z",
                "2099-01-01T00:00:00+23:59",
                "2099-01-01T00:00:00-23:59",
                "2099-02-30T00:00Z",
                "2099-01-01 00:00:00+00:00",
                "2099-01-01T00:00:00.123456789Z",
                "1700000000",
                "2099-01-01T24:00:00Z",
            ]
        ),
        st.datetimes(timezones=st.timezones()).map(datetime.isoformat),
        json_values,
    )


# --- state that refused input must not touch ---------------------------------------------------


@dataclass(frozen=True)
class World:
    """What a refused request must leave as it was: the run ledger, the audit trail, every
    schedule row (all columns), beat's timing rows and its change marker, and the messages
    waiting in each queue."""

    runs: int
    audit: int
    schedules: tuple[tuple[Any, ...], ...]
    timings: tuple[int, int, int]
    beat_told: tuple[Any, ...]
    queued: tuple[tuple[str, int], ...]

    @classmethod
    def now(cls) -> World:
        rows = tuple(tuple(row.items()) for row in PeriodicTask.objects.order_by("pk").values())
        return cls(
            runs=Run.objects.count(),
            audit=AuditEntry.objects.count(),
            schedules=rows,
            timings=(
                CrontabSchedule.objects.count(),
                IntervalSchedule.objects.count(),
                ClockedSchedule.objects.count(),
            ),
            beat_told=tuple(PeriodicTasks.objects.values_list("last_update", flat=True)),
            queued=tuple((depth.name, depth.messages) for depth in queue_depths()),
        )

    @property
    def messages(self) -> int:
        return sum(n for _, n in self.queued)


@contextmanager
def rolled_back() -> Iterator[None]:
    """One example's database changes, undone afterwards (a savepoint inside the test's
    transaction), so every example starts from the fixtures' state. Messages it queued stay
    in the broker (they are counted, not undone): the `broker` fixture empties them at the end."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def json_error(response: Response) -> dict[str, Any]:
    """The API's error shape: JSON with `detail` (text) and `errors` (field -> messages)."""
    assert response["Content-Type"].startswith("application/json"), response.content[:500]
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    assert isinstance(body.get("detail"), str), body
    errors = body.get("errors")
    assert isinstance(errors, dict), body
    assert all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(m, str) for m in v)
        for k, v in errors.items()
    ), body
    return body


def seed_schedules(owner: User, *, plain_args: str = "[]") -> dict[str, int]:
    """The schedules the schedule fuzzers edit, by role: a job's crontab, a sensitive job's
    interval, the declared reaper and a plain Celery task (not a registered job)."""
    actor = Actor(user=owner)
    crontab = Timing(Kind.CRONTAB, cron="30 2 * * 1-5", timezone="Europe/Berlin")
    job = services.schedule_save(
        ScheduleDefinition("fuzz job schedule", "demo.progress", crontab, {"steps": 5}),
        actor=actor,
    )
    secret = services.schedule_save(
        ScheduleDefinition(
            "fuzz secret schedule", "demo.sensitive", Timing(Kind.INTERVAL, every=5),
            {"password": "hunter2", "label": "x"},
        ),
        actor=actor,
    )  # fmt: skip
    every, _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    plain = PeriodicTask.objects.create(
        name="fuzz plain", task="demo.add", interval=every, args=plain_args
    )
    return {
        "job": job.pk,
        "sensitive": secret.pk,
        "declared": PeriodicTask.objects.get(name=REAPER).pk,
        "plain": plain.pk,
    }
