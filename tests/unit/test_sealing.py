"""Sealed values are bound to their job and parameter, and sensitive fields are write-only."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import pytest
from django import forms
from django.http import QueryDict

from tasks_app.jobs.params import (
    MASK,
    STORED_SECRET_HELP,
    Param,
    ParamSchema,
    ParamsError,
)
from tasks_app.jobs.sealing import SealError, open_sealed, seal, unseal, unseal_for


def everything(
    ctx: object,
    pin: int = 0,
    day: date | None = None,
    codes: list[str] = [],  # noqa: B006
    tier: Literal["basic", "gold"] = "basic",
    flag: bool = False,
    note: Annotated[str, Param(sensitive=True)] = "",
    label: str = "",
) -> None: ...


SCHEMA = ParamSchema.from_function(
    everything, job="t.everything", sensitive=["pin", "day", "codes", "tier", "flag"]
)
STORED = {
    "pin": 482915, "day": "2031-07-14", "codes": ["alpha-7781"], "tier": "gold",
    "flag": True, "note": "note-5521", "label": "shown",
}  # fmt: skip


def test_a_sealed_value_names_its_job_and_parameter() -> None:
    token = seal(482915, "t.everything", "pin")
    assert open_sealed(token).bound_to == ("t.everything", "pin")
    assert unseal(token) == 482915
    assert unseal_for(token, "t.everything", "pin") == 482915
    with pytest.raises(SealError, match="another job or parameter"):
        unseal_for(token, "t.everything", "note")
    with pytest.raises(SealError, match="another job or parameter"):
        unseal_for(token, "t.other", "pin")
    unbound = seal(482915)
    assert open_sealed(unbound).bound_to is None
    with pytest.raises(SealError):
        unseal_for(unbound, "t.everything", "pin")
    assert unseal_for(unbound, "t.everything", "pin", unbound_ok=True) == 482915
    with pytest.raises(ValueError, match="sealed already"):
        seal(token, "t.everything", "pin")


def test_job_sensitive_marks_function_parameters_in_the_schema() -> None:
    assert SCHEMA.sensitive == frozenset({"pin", "day", "codes", "tier", "flag", "note"})
    stored = SCHEMA.validate(STORED)
    for name in SCHEMA.sensitive:
        assert open_sealed(stored[name]).bound_to == ("t.everything", name)
    assert stored["label"] == "shown"
    assert SCHEMA.mask(stored) == {**dict.fromkeys(SCHEMA.sensitive, MASK), "label": "shown"}
    assert SCHEMA.json_schema()["properties"]["pin"]["writeOnly"] is True
    with pytest.raises(TypeError, match="sensitive names no parameter"):
        ParamSchema.from_function(everything, sensitive=["nope"])


def test_validation_refuses_a_sealed_value_from_elsewhere() -> None:
    stored = SCHEMA.validate(STORED)
    assert SCHEMA.validate(stored) == stored  # its own: kept as it is
    for token in (seal("x", "t.other", "note"), seal("x")):  # another job's; unbound
        with pytest.raises(ParamsError) as caught:
            SCHEMA.validate({**stored, "note": token})
        assert set(caught.value.errors) == {"note"}
    with pytest.raises(ParamsError) as moved:
        SCHEMA.validate({**stored, "codes": stored["pin"]})  # a stored value, another parameter
    assert "another job or parameter" in moved.value.errors["codes"][0]
    # A message already in the broker with an unbound token still runs.
    assert SCHEMA.to_python({**stored, "note": seal("old")})["note"] == "old"


def test_every_sensitive_field_renders_without_a_value() -> None:
    form = SCHEMA.form(initial=STORED)
    html = str(form)
    for text in ("482915", "2031-07-14", "alpha-7781", "note-5521"):
        assert text not in html
    assert 'value="gold" selected' not in html
    assert "shown" in html  # not sensitive: shown
    assert html.count(STORED_SECRET_HELP) == 6
    assert isinstance(form.fields["flag"].widget, forms.Select)  # blank / Yes / No
    # Typed, then refused elsewhere: not echoed back either.
    bound = SCHEMA.form(QueryDict("pin=555777&day=2040-01-02&codes=zz-1&tier=gold&flag=true"))
    bound.add_error(None, "refused")
    assert not {"555777", "2040-01-02", "zz-1"} & set(str(bound).split('"'))


def test_a_field_left_empty_keeps_the_stored_sealed_value() -> None:
    stored = SCHEMA.validate(STORED)
    form = SCHEMA.form(QueryDict("pin=&day=&codes=&tier=&flag=&note=&label=new"), initial=stored)
    assert SCHEMA.validate_form(form) == {**stored, "label": "new"}
    changed = SCHEMA.form(QueryDict("pin=7&flag=false&label=new"), initial=stored)
    values = SCHEMA.validate_form(changed)
    assert values is not None
    assert unseal(values["pin"]) == 7
    assert unseal(values["flag"]) is False
    assert values["day"] == stored["day"]


class AccountForm(forms.Form):
    account = forms.CharField()
    tier = forms.ChoiceField(choices=[("a", "A"), ("b", "B")])
    label = forms.CharField(required=False)


def test_a_form_jobs_sensitive_fields_are_write_only_too() -> None:
    schema = ParamSchema.from_form(AccountForm, sensitive=["account", "tier"], job="t.form")
    stored = schema.validate({"account": "acct-9", "tier": "b", "label": "x"})
    html = str(schema.form(QueryDict("account=&tier=&label=y"), initial=stored))
    assert "acct-9" not in html
    assert 'value="b" selected' not in html
    assert '<option value="" selected>' in html or '<option value="">' in html
    form: Any = schema.form(QueryDict("account=&tier=&label=y"), initial=stored)
    assert schema.validate_form(form) == {**stored, "label": "y"}
