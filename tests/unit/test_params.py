"""Job parameter schemas: one schema renders the form, validates every way in and round-trips
exact Python values through the JSON of a Celery message."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Literal, Optional
from zoneinfo import ZoneInfo

import pytest
from annotated_types import Ge, Gt, Interval, Le, Lt, MaxLen, MinLen
from django import forms
from django.http import QueryDict
from django.utils import timezone as django_timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks_app.jobs.params import (
    MASK,
    DateInput,
    DateTimeInput,
    LinesField,
    Param,
    ParamInfo,
    ParamSchema,
    ParamsError,
)
from tasks_app.jobs.sealing import is_sealed


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


def generate_report(
    ctx: object,
    sprint_count: Annotated[int, Ge(1), Le(50), Param(help="How many sprints")] = 5,
    team: str = "",
    force: bool = False,
    day: date | None = None,
    kind: Literal["csv", "pdf"] = "csv",
    colour: Colour = Colour.RED,
    amounts: list[Decimal] = [],  # noqa: B006 - the schema copies it
    when: datetime | None = None,
    password: Annotated[str, Param(sensitive=True)] = "",
) -> None:
    """The job of the brief."""


def needs_input(ctx: object, team: str, day: date, *, ack: bool) -> None:
    """Parameters without defaults are required."""


REPORT = ParamSchema.from_function(generate_report)
REPORT_DEFAULTS = {
    "sprint_count": 5,
    "team": "",
    "force": False,
    "day": None,
    "kind": "csv",
    "colour": "red",
    "amounts": [],
    "when": None,
    "password": "",
}


def errors_of(schema: ParamSchema, data: Mapping[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(ParamsError) as caught:
        schema.validate(data)
    return caught.value.errors


def post(schema: ParamSchema, body: str) -> forms.Form:
    return schema.form(QueryDict(body))


# --- Validation of API / schedule input -----------------------------------------------------


def test_defaults_fill_every_parameter() -> None:
    assert REPORT.validate({}) == REPORT_DEFAULTS
    assert list(REPORT.validate({})) == list(REPORT_DEFAULTS)  # in signature order


def test_mutable_default_is_a_fresh_copy() -> None:
    first = REPORT.to_python({})
    first["amounts"].append(Decimal(1))
    assert REPORT.to_python({})["amounts"] == []
    assert REPORT.validate({})["amounts"] == []


def test_unknown_keys_are_refused() -> None:
    errors = errors_of(REPORT, {"sprint_count": 3, "zeta": 1, "alpha": 2})
    assert errors == {"__all__": ["Unknown parameter(s): alpha, zeta"]}
    with pytest.raises(ParamsError, match="Unknown parameter"):
        REPORT.to_python({"zeta": 1})
    with pytest.raises(ParamsError, match="Unknown parameter"):
        REPORT.to_json({"zeta": 1})


def test_missing_required_parameters_are_refused() -> None:
    schema = ParamSchema.from_function(needs_input)
    assert errors_of(schema, {}) == {
        "team": ["This field is required."],
        "day": ["This field is required."],
        "ack": ["This field is required."],
    }
    assert errors_of(schema, {"team": "", "day": "2024-01-02", "ack": False}) == {
        "team": ["This field is required."]
    }
    assert schema.validate({"team": "a", "day": "2024-01-02", "ack": False}) == {
        "team": "a",
        "day": "2024-01-02",
        "ack": False,
    }
    assert [p.required for p in schema.params] == [True, True, True]


def test_bounds_are_refused_naming_the_field() -> None:
    with pytest.raises(ParamsError) as caught:
        REPORT.validate({"sprint_count": 51})
    assert str(caught.value) == "sprint_count: Ensure this value is less than or equal to 50."
    assert errors_of(REPORT, {"sprint_count": 0}) == {
        "sprint_count": ["Ensure this value is greater than or equal to 1."]
    }


def test_exclusive_bounds_and_lengths() -> None:
    def job(
        ctx: object,
        ratio: Annotated[float, Gt(0), Lt(1)] = 0.5,
        whole: Annotated[int, Interval(gt=0, lt=10)] = 1,
        price: Annotated[Decimal, Gt(0)] = Decimal("1.00"),
        code: Annotated[str, MinLen(2), MaxLen(4)] = "ab",
        tags: Annotated[list[Annotated[str, MaxLen(3)]], MinLen(1), MaxLen(2)] = ["x"],  # noqa: B006
    ) -> None: ...

    schema = ParamSchema.from_function(job)
    assert errors_of(schema, {"ratio": 0, "whole": 10, "price": "0", "code": "a"}) == {
        "ratio": ["Ensure this value is greater than 0."],
        "whole": ["Ensure this value is less than or equal to 9."],
        "price": ["Ensure this value is greater than 0."],
        "code": ["Ensure this value has at least 2 characters (it has 1)."],
    }
    assert errors_of(schema, {"tags": []}) == {"tags": ["Give at least 1 value(s)."]}
    assert errors_of(schema, {"tags": ["a", "b", "c"]}) == {"tags": ["Give at most 2 value(s)."]}
    assert errors_of(schema, {"tags": ["long"]}) == {
        "tags": ["Item 1: Ensure this value has at most 3 characters (it has 4)."]
    }
    ratio, whole = schema.params[0], schema.params[1]
    assert (ratio.minimum, ratio.exclusive_minimum, ratio.exclusive_maximum) == (None, 0, 1)
    assert (whole.minimum, whole.maximum, whole.exclusive_minimum) == (1, 9, None)


def test_ints_refuse_fractions_but_take_numeric_text() -> None:
    assert errors_of(REPORT, {"sprint_count": 5.5}) == {"sprint_count": ["Enter a whole number."]}
    assert errors_of(REPORT, {"sprint_count": True}) == {"sprint_count": ["Enter a whole number."]}
    assert REPORT.validate({"sprint_count": "7"})["sprint_count"] == 7


@pytest.mark.parametrize("value", ["maybe", 3, 0, 1.0, "2"])
def test_bool_refuses_non_booleans(value: object) -> None:
    assert errors_of(REPORT, {"force": value}) == {"force": ["Enter true or false."]}


@pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), ("true", True)])
def test_bool_takes_booleans(value: object, expected: bool) -> None:
    assert REPORT.validate({"force": value})["force"] is expected


def test_json_shapes_are_checked() -> None:
    assert errors_of(REPORT, {"amounts": "1.5"}) == {"amounts": ["Enter a list of values."]}
    assert errors_of(REPORT, {"team": ["a"]}) == {"team": ["Enter a single value."]}
    assert errors_of(REPORT, {"team": {"a": 1}}) == {"team": ["Enter a single value."]}
    assert errors_of(REPORT, {"force": [True]}) == {"force": ["Enter a single value."]}
    assert errors_of(REPORT, {"day": 20240101}) == {"day": ["Enter a valid date."]}
    assert errors_of(REPORT, {"when": 5}) == {"when": ["Enter a valid date/time."]}
    assert errors_of(REPORT, {"colour": "green"}) == {
        "colour": ["Select a valid choice. green is not one of the available choices."]
    }


def test_optional_takes_none_and_non_optional_refuses_null() -> None:
    assert REPORT.validate({"day": None, "when": None})["day"] is None
    assert REPORT.to_python({"day": None})["day"] is None
    assert errors_of(REPORT, {"sprint_count": None, "team": None}) == {
        "sprint_count": ["This field cannot be null."],
        "team": ["This field cannot be null."],
    }


def test_optional_without_default_defaults_to_none() -> None:
    def job(ctx: object, note: Optional[str], flag: bool | None) -> None: ...  # noqa: UP045

    schema = ParamSchema.from_function(job)
    assert schema.validate({}) == {"note": None, "flag": None}
    assert schema.validate({"note": "", "flag": "false"}) == {"note": None, "flag": False}
    assert errors_of(schema, {"flag": "maybe"}) == {"flag": ["Enter true, false or null."]}
    assert [(p.required, p.nullable) for p in schema.params] == [(False, True), (False, True)]


def test_list_items_are_validated_one_by_one() -> None:
    assert errors_of(REPORT, {"amounts": ["1", "x", 2, "NaN", ["3"]]}) == {
        "amounts": [
            "Item 2: Enter a number.",
            "Item 4: Enter a number.",
            "Item 5: Enter a single value.",
        ]
    }


def test_list_of_choices_counts_even_when_empty() -> None:
    def job(ctx: object, colours: Annotated[list[Colour], MinLen(1)] = [Colour.RED]) -> None: ...  # noqa: B006

    schema = ParamSchema.from_function(job)
    assert errors_of(schema, {"colours": []}) == {"colours": ["Give at least 1 value(s)."]}
    assert schema.to_python({"colours": ["blue", "red"]}) == {"colours": [Colour.BLUE, Colour.RED]}


def test_python_values_from_code_are_accepted() -> None:
    values = {
        "day": date(2024, 2, 29),
        "colour": Colour.BLUE,
        "amounts": (Decimal("1.10"),),
        "when": datetime(2024, 1, 1, 9, 30, tzinfo=UTC),
    }
    assert REPORT.validate(values) | {} == {
        **REPORT_DEFAULTS,
        "day": "2024-02-29",
        "colour": "blue",
        "amounts": ["1.10"],
        "when": "2024-01-01T09:30:00+00:00",
    }
    assert errors_of(REPORT, {"team": {1, 2}}) == {"team": ["Unsupported value."]}


def test_params_error_is_readable() -> None:
    error = ParamsError({"__all__": ["Unknown parameter(s): x"], "a": ["Bad.", "Worse."]})
    assert str(error) == "Unknown parameter(s): x; a: Bad.; a: Worse."
    assert isinstance(error, ValueError)


# --- Worker side: exact Python values -------------------------------------------------------


def test_to_python_gives_exact_types() -> None:
    message = json.loads(
        json.dumps(
            REPORT.validate(
                {
                    "day": "2024-02-29",
                    "colour": "blue",
                    "amounts": ["1.10", 2],
                    "when": "2024-01-01T10:00:00.123456+02:00",
                }
            )
        )
    )
    values = REPORT.to_python(message)
    assert type(values["day"]) is date
    assert values["colour"] is Colour.BLUE
    assert [str(a) for a in values["amounts"]] == ["1.10", "2"]
    when = values["when"]
    assert when == datetime(2024, 1, 1, 8, 0, 0, 123456, tzinfo=UTC)
    assert when.utcoffset() == timedelta(hours=2)
    assert values["sprint_count"] == 5


def test_to_python_revalidates() -> None:
    with pytest.raises(ParamsError, match="sprint_count"):
        REPORT.to_python({"sprint_count": 500})


def test_literal_and_int_enum_keep_their_types() -> None:
    def job(ctx: object, size: Literal[1, 2, "big"] = 1, level: Level = Level.LOW) -> None: ...

    schema = ParamSchema.from_function(job)
    values = schema.to_python(schema.validate({"size": "2", "level": 2}))
    assert values == {"size": 2, "level": Level.HIGH}
    assert type(values["size"]) is int
    assert values["level"] is Level.HIGH
    assert schema.to_python(schema.validate({"size": "big"}))["size"] == "big"
    assert schema.validate({"level": Level.HIGH}) == {"size": 1, "level": 2}


def test_to_json_converts_python_values() -> None:
    assert REPORT.to_json(
        {
            "day": date(2024, 1, 2),
            "when": datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
            "amounts": [Decimal("1.10"), Decimal("1E+2")],
            "colour": Colour.RED,
        }
    ) == {
        "day": "2024-01-02",
        "colour": "red",
        "amounts": ["1.10", "1E+2"],
        "when": "2024-01-02T03:04:05.000006+00:00",
    }


class Mood(enum.Enum):
    CALM = "calm"
    ANGRY = "angry"


def everything(
    ctx: object,
    text: str = "",
    count: Annotated[int, Ge(-1000), Le(1000)] = 0,
    ratio: float = 0.0,
    flag: bool = False,
    day: date | None = None,
    moment: datetime | None = None,
    amount: Decimal = Decimal("0"),
    mood: Mood = Mood.CALM,
    level: Level = Level.LOW,
    size: Literal[1, 2, 3] = 1,
    fmt: Literal["csv", "pdf"] = "csv",
    days: list[date] = [],  # noqa: B006
    moments: list[datetime] = [],  # noqa: B006
    amounts: list[Decimal] = [],  # noqa: B006
    moods: list[Mood] = [],  # noqa: B006
    sizes: list[Literal[1, 2, 3]] = [],  # noqa: B006
    names: list[str] = [],  # noqa: B006
    counts: list[int] = [],  # noqa: B006
    ratios: list[float] = [],  # noqa: B006
    flags: list[bool] = [],  # noqa: B006
) -> None:
    """One parameter of every supported kind."""


EVERYTHING = ParamSchema.from_function(everything)
EVERYTHING_DEFAULTS: dict[str, Any] = {p.name: p.default for p in EVERYTHING.params}

_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))  # no surrogates
_offsets = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
_moments = st.datetimes(timezones=_offsets)
_decimals = st.decimals(allow_nan=False, allow_infinity=False)
_floats = st.floats(allow_nan=False, allow_infinity=False)
VALUES = st.fixed_dictionaries(
    {},
    optional={
        "text": _text,
        "count": st.integers(-1000, 1000),
        "ratio": _floats,
        "flag": st.booleans(),
        "day": st.none() | st.dates(),
        "moment": st.none() | _moments,
        "amount": st.decimals(allow_nan=False, allow_infinity=False, places=2),
        "mood": st.sampled_from(Mood),
        "level": st.sampled_from(Level),
        "size": st.sampled_from([1, 2, 3]),
        "fmt": st.sampled_from(["csv", "pdf"]),
        "days": st.lists(st.dates(), max_size=3),
        "moments": st.lists(_moments, max_size=3),
        "amounts": st.lists(_decimals, max_size=3),
        "moods": st.lists(st.sampled_from(Mood), max_size=3),
        "sizes": st.lists(st.sampled_from([1, 2, 3]), max_size=3),
        "names": st.lists(_text.filter(str.strip), max_size=3),
        "counts": st.lists(st.integers(), max_size=3),
        "ratios": st.lists(_floats, max_size=3),
        "flags": st.lists(st.booleans(), max_size=3),
    },
)


def expected_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """What the job should receive: defaults filled in, text stripped (as Django does)."""
    expected = {**EVERYTHING.to_python({}), **values}
    expected["text"] = expected["text"].strip()
    expected["names"] = [name.strip() for name in expected["names"]]
    return expected


def assert_same(actual: Any, expected: Any) -> None:
    """Equal, of the same type, and with the same Decimal digits and datetime offset."""
    assert type(actual) is type(expected), (actual, expected)
    assert actual == expected
    if isinstance(expected, list):
        for got, want in zip(actual, expected, strict=True):
            assert_same(got, want)
    if isinstance(expected, Decimal):
        assert str(actual) == str(expected)
    if isinstance(expected, datetime):
        assert actual.utcoffset() == expected.utcoffset()


@settings(max_examples=300, deadline=None)
@given(values=VALUES, as_json=st.booleans())
def test_round_trip_through_a_message_is_exact(values: dict[str, Any], as_json: bool) -> None:
    given_in = EVERYTHING.to_json(values) if as_json else values
    message = json.loads(json.dumps(EVERYTHING.validate(given_in)))
    received = EVERYTHING.to_python(message)
    expected = expected_values(values)
    assert list(received) == list(expected)
    for name, value in expected.items():
        assert_same(received[name], value)
    assert EVERYTHING.validate(message) == message  # validating twice changes nothing


# --- The HTML form --------------------------------------------------------------------------


def widget(schema: ParamSchema, name: str) -> forms.Widget:
    found: forms.Widget = schema.form().fields[name].widget
    return found


def test_widgets_fit_the_types() -> None:
    def job(ctx: object, colours: list[Colour] = [], days: list[date] = []) -> None: ...  # noqa: B006

    assert isinstance(widget(REPORT, "day"), DateInput)
    assert isinstance(widget(REPORT, "when"), DateTimeInput)
    assert isinstance(widget(REPORT, "kind"), forms.Select)
    assert isinstance(widget(REPORT, "colour"), forms.Select)
    assert isinstance(widget(REPORT, "force"), forms.CheckboxInput)
    assert isinstance(widget(REPORT, "amounts"), forms.Textarea)
    assert isinstance(widget(REPORT, "sprint_count"), forms.NumberInput)
    password = widget(REPORT, "password")
    assert isinstance(password, forms.PasswordInput)
    assert password.render_value is False
    lists = ParamSchema.from_function(job)
    assert isinstance(widget(lists, "colours"), forms.CheckboxSelectMultiple)
    assert isinstance(widget(lists, "days"), forms.Textarea)
    assert lists.form().fields["days"].help_text == "One value per line."

    html = str(REPORT.form())
    assert 'type="date" name="day"' in html
    assert 'type="datetime-local" name="when"' in html
    assert 'type="checkbox" name="force"' in html
    assert 'name="sprint_count" value="5" min="1" max="50"' in html
    assert 'type="password" name="password"' in html


def test_labels_help_and_requiredness() -> None:
    form = REPORT.form()
    field = form.fields["sprint_count"]
    assert (field.label, field.help_text, field.required) == (
        "Sprint count",
        "How many sprints",
        False,
    )
    assert not form.fields["force"].required

    def job(ctx: object, team: Annotated[str, Param(label="Squad")]) -> None: ...

    schema = ParamSchema.from_function(job)
    assert schema.form().fields["team"].label == "Squad"
    assert schema.form().fields["team"].required
    assert schema.params[0].label == "Squad"


def test_form_post_gives_json_kwargs() -> None:
    form = post(
        REPORT,
        "csrfmiddlewaretoken=x&queue=high&sprint_count=7&force=on&day=2024-03-01"
        "&amounts=1.10%0D%0A%0D%0A%202%20%0D%0A&when=2024-03-01T09:30&colour=blue",
    )
    assert REPORT.validate_form(form) == {
        **REPORT_DEFAULTS,
        "sprint_count": 7,
        "force": True,
        "day": "2024-03-01",
        "amounts": ["1.10", "2"],
        "when": "2024-03-01T09:30:00+00:00",
        "colour": "blue",
    }


def test_form_post_errors_stay_on_the_form() -> None:
    form = post(REPORT, "sprint_count=99&amounts=1%0Aabc")
    assert REPORT.validate_form(form) is None
    assert form.errors == {
        "sprint_count": ["Ensure this value is less than or equal to 50."],
        "amounts": ["Item 2: Enter a number."],
    }


def test_form_cleared_number_takes_its_default() -> None:
    assert REPORT.validate_form(post(REPORT, "sprint_count=&team=")) == REPORT_DEFAULTS


def test_form_naive_datetime_is_in_the_current_time_zone() -> None:
    with django_timezone.override(ZoneInfo("Europe/Paris")):
        kwargs = REPORT.validate_form(post(REPORT, "when=2024-07-01T12:00"))
    assert kwargs is not None
    assert kwargs["when"] == "2024-07-01T12:00:00+02:00"


def test_form_shows_json_initial_values() -> None:
    initial = {
        "when": "2024-07-01T10:00:00+00:00",
        "colour": "blue",
        "amounts": ["1.10", "2"],
        "day": "2024-02-29",
        "password": "secret",
    }
    with django_timezone.override(ZoneInfo("Europe/Paris")):
        form = REPORT.form(initial=initial, prefix="p")
        html = str(form)
    assert 'name="p-when" value="2024-07-01T12:00:00"' in html
    assert '<option value="blue" selected>' in html
    assert ">\n1.10\n2</textarea>" in html
    assert 'name="p-day" value="2024-02-29"' in html
    assert "secret" not in html


def test_form_shows_python_defaults() -> None:
    def job(ctx: object, when: datetime = datetime(2024, 1, 1, tzinfo=UTC)) -> None: ...

    assert 'value="2024-01-01T00:00:00"' in str(ParamSchema.from_function(job).form())
    assert '<option value="red" selected>' in str(REPORT.form())


def test_lines_field_parses_text_and_lists() -> None:
    field = LinesField(item_field=forms.DateField())
    assert field.clean("2024-01-01\n\n  2024-01-02  \n") == [date(2024, 1, 1), date(2024, 1, 2)]
    assert field.clean(["2024-01-03"]) == [date(2024, 1, 3)]
    assert field.prepare_value([date(2024, 1, 1), date(2024, 1, 2)]) == "2024-01-01\n2024-01-02"
    with pytest.raises(forms.ValidationError):
        field.clean(5)


# --- Sensitive parameters -------------------------------------------------------------------


def test_sensitive_parameters_are_masked() -> None:
    assert REPORT.sensitive == frozenset({"password"})
    assert REPORT.mask({"password": "hunter2", "team": "a"}) == {"password": MASK, "team": "a"}
    assert REPORT.mask({"password": ""}) == {"password": ""}
    assert REPORT.mask({"team": "a"}) == {"team": "a"}
    assert REPORT.to_python({"password": " spaced "})["password"] == " spaced "


def test_sensitive_default_is_not_shown() -> None:
    def job(ctx: object, pin: Annotated[str, Param(sensitive=True)] = "1234") -> None: ...

    schema = ParamSchema.from_function(job)
    assert schema.params[0].default == MASK
    assert "default" not in schema.json_schema()["properties"]["pin"]
    stored = schema.validate({})
    assert "1234" not in str(stored)  # sealed
    assert schema.unsealed(stored) == {"pin": "1234"}
    assert schema.to_python(stored) == {"pin": "1234"}


def test_sensitive_values_are_sealed_and_a_sealed_value_validates_again() -> None:
    stored = REPORT.validate({"password": "hunter2"})
    assert is_sealed(stored["password"])
    assert "hunter2" not in json.dumps(stored)
    # A retry or a schedule re-sends the sealed value: it is checked and kept, not re-read.
    assert REPORT.validate(stored)["password"] == stored["password"]
    assert REPORT.to_python(stored)["password"] == "hunter2"
    assert REPORT.mask(stored)["password"] == MASK


def test_a_value_sealed_with_another_key_is_a_clear_error(settings: Any) -> None:
    settings.TASKDECK_SEALING_KEYS = ["old-key"]
    stored = REPORT.validate({"password": "hunter2"})
    settings.TASKDECK_SEALING_KEYS = ["new-key"]
    with pytest.raises(ParamsError) as caught:
        REPORT.to_python(stored)
    assert "sealed with a key" in str(caught.value.errors["password"])
    settings.TASKDECK_SEALING_KEYS = ["new-key", "old-key"]  # rotation: old tokens still open
    assert REPORT.to_python(stored)["password"] == "hunter2"


# --- JSON Schema ----------------------------------------------------------------------------


def test_json_schema_shape() -> None:
    schema = ParamSchema.from_function(needs_input).json_schema()
    assert schema["required"] == ["team", "day", "ack"]
    schema = REPORT.json_schema()
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == []
    props = schema["properties"]
    assert props["sprint_count"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 50,
        "title": "Sprint count",
        "description": "How many sprints",
        "default": 5,
    }
    assert props["day"]["type"] == ["string", "null"]
    assert props["day"]["format"] == "date"
    assert props["when"]["format"] == "date-time"
    assert props["colour"]["enum"] == ["red", "blue"]
    assert props["amounts"]["type"] == "array"
    assert props["amounts"]["items"] == {"type": "string", "format": "decimal"}
    assert props["password"]["writeOnly"] is True
    assert props["force"]["type"] == "boolean"
    json.dumps(schema)  # all JSON


def test_param_info_describes_each_parameter() -> None:
    info = {p.name: p for p in REPORT.params}
    assert info["sprint_count"] == ParamInfo(
        name="sprint_count",
        label="Sprint count",
        help="How many sprints",
        type_label="int",
        required=False,
        default=5,
        choices=None,
        minimum=1,
        maximum=50,
        many=False,
        sensitive=False,
    )
    assert info["colour"].choices == (("red", "Red"), ("blue", "Blue"))
    assert info["kind"].choices == (("csv", "csv"), ("pdf", "pdf"))
    assert info["amounts"].type_label == "list[decimal]"
    assert info["amounts"].many
    assert info["day"].type_label == "date"
    assert info["day"].nullable


# --- Refused declarations -------------------------------------------------------------------


def bad_dict(ctx: object, options: dict[str, int]) -> None: ...
def bad_class(ctx: object, target: ParamInfo) -> None: ...
def bad_missing(ctx: object, target) -> None: ...  # type: ignore[no-untyped-def]
def bad_args(ctx: object, *names: str) -> None: ...
def bad_kwargs(ctx: object, **options: str) -> None: ...
def bad_union(ctx: object, value: int | str) -> None: ...
def bad_bare_list(ctx: object, value: list) -> None: ...  # type: ignore[type-arg]
def bad_optional_list(ctx: object, value: list[int] | None = None) -> None: ...
def bad_none_default(ctx: object, value: int = None) -> None: ...  # type: ignore[assignment]  # noqa: RUF013
def bad_default(ctx: object, value: Annotated[int, Le(3)] = 5) -> None: ...
def bad_choice_default(ctx: object, value: Literal["a"] = "b") -> None: ...  # type: ignore[assignment]
def bad_bound(ctx: object, value: Annotated[str, Ge(1)] = "") -> None: ...
def bad_constraint(ctx: object, value: Annotated[int, "unit"] = 1) -> None: ...
def bad_float_choices(ctx: object, value: Literal[1.5]) -> None: ...  # type: ignore[valid-type]


@pytest.mark.parametrize(
    ("fn", "message"),
    [
        (bad_dict, "'options': unsupported type"),
        (bad_class, "'target': unsupported type"),
        (bad_missing, "'target': needs a type annotation"),
        (bad_args, "'names': jobs take named parameters only"),
        (bad_kwargs, "'options': jobs take named parameters only"),
        (bad_union, "only `T | None` unions"),
        (bad_bare_list, "a list needs its item type"),
        (bad_optional_list, "a list cannot be None"),
        (bad_none_default, "a default of None needs"),
        (bad_default, "invalid default 5: Ensure this value is less than or equal to 3."),
        (bad_choice_default, "invalid default 'b'"),
        (bad_bound, "bounds need a number"),
        (bad_constraint, "unsupported constraint 'unit'"),
        (bad_float_choices, "choices must be str or int"),
    ],
)
def test_unsupported_declarations_raise_type_error(fn: Any, message: str) -> None:
    with pytest.raises(TypeError, match=f"tests.unit.test_params.{fn.__name__}") as caught:
        ParamSchema.from_function(fn)
    assert message in str(caught.value)


def test_only_parameter_hints_need_to_resolve() -> None:
    def job(ctx: ContextOnlyForTypeCheckers, count: int = 1) -> ResultOnlyForTypeCheckers: ...  # type: ignore[name-defined]  # noqa: F821

    assert ParamSchema.from_function(job).validate({}) == {"count": 1}

    def broken(ctx: object, count: Missing = 1) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(TypeError, match="broken: cannot read its type hints"):
        ParamSchema.from_function(broken)


def test_function_without_context_is_refused() -> None:
    def nothing() -> None: ...

    with pytest.raises(TypeError, match="context"):
        ParamSchema.from_function(nothing)
    assert ParamSchema.from_function(nothing, skip_first=False).params == ()


def test_skip_first_false_reads_every_parameter() -> None:
    def job(count: int = 1) -> None: ...

    assert ParamSchema.from_function(job, skip_first=False).validate({}) == {"count": 1}


# --- Explicit Form jobs ---------------------------------------------------------------------


class ImportForm(forms.Form):
    source = forms.ChoiceField(choices=[("", "---"), ("s3", "S3"), ("ftp", "FTP")])
    since = forms.DateField()
    limit = forms.IntegerField(min_value=1, max_value=10, initial=3, required=False)
    token = forms.CharField(required=False)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("source") == "ftp" and not cleaned.get("token"):
            raise forms.ValidationError("FTP needs a token.")
        return cleaned


def test_explicit_form_job() -> None:
    schema = ParamSchema.from_form(ImportForm, sensitive=["token"])
    assert schema.form_class is ImportForm
    assert schema.sensitive == frozenset({"token"})
    assert [p.name for p in schema.params] == ["source", "since", "limit", "token"]
    source, since, limit, _token = schema.params
    assert source.choices == (("s3", "S3"), ("ftp", "FTP"))
    assert (since.type_label, since.required) == ("date", True)
    assert (limit.default, limit.minimum, limit.maximum, limit.required) == (3, 1, 10, False)

    kwargs = schema.validate({"source": "s3", "since": "2024-01-02"})
    assert kwargs == {"source": "s3", "since": "2024-01-02", "limit": 3, "token": ""}
    values = schema.to_python(json.loads(json.dumps(kwargs)))
    assert values == {"source": "s3", "since": date(2024, 1, 2), "limit": 3, "token": ""}
    assert errors_of(schema, {"source": "ftp", "since": "2024-01-02"}) == {
        "__all__": ["FTP needs a token."]
    }
    assert errors_of(schema, {"since": "2024-01-02", "extra": 1}) == {
        "__all__": ["Unknown parameter(s): extra"]
    }
    assert "since" in errors_of(schema, {"source": "s3"})
    assert schema.json_schema()["required"] == ["source", "since"]
    assert schema.json_schema()["properties"]["token"]["writeOnly"] is True
    form = schema.form(QueryDict("source=s3&since=2024-01-02&csrfmiddlewaretoken=x"))
    assert isinstance(form, ImportForm)
    assert schema.validate_form(form) == {
        "source": "s3",
        "since": "2024-01-02",
        "limit": None,
        "token": "",
    }


def test_explicit_form_sensitive_must_name_a_field() -> None:
    with pytest.raises(TypeError, match="nope"):
        ParamSchema.from_form(ImportForm, sensitive=["nope"])
