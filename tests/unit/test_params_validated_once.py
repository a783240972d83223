"""A launch is validated once: the schema hands back what it already checked, and a
ParamsError becomes form errors in one place."""

from __future__ import annotations

import copy
import json
import pickle
from typing import Annotated, Any

import pytest
from django import forms

from tasks_app.jobs.params import Param, ParamSchema, ParamsError, ValidatedParams
from tasks_app.jobs.sealing import is_sealed, unseal


def launch(ctx: object, steps: int = 3, tags: list[str] = []) -> None:  # noqa: B006
    del ctx, steps, tags


def secret(ctx: object, password: Annotated[str, Param(sensitive=True)] = "") -> None:
    del ctx, password


def counted(form_class: type[forms.Form], *, job: str) -> tuple[ParamSchema, list[Any]]:
    """A form-based schema whose field validator records every call."""
    calls: list[Any] = []
    form_class.base_fields["steps"].validators.append(calls.append)
    return ParamSchema.from_form(form_class, job=job), calls


class StepsForm(forms.Form):
    steps = forms.IntegerField(min_value=1)


def test_validate_answers_validated_params_of_its_job() -> None:
    schema = ParamSchema.from_function(launch, job="demo.launch")
    valid = schema.validate({"steps": 5})
    assert isinstance(valid, ValidatedParams)
    assert valid.job == "demo.launch"
    assert valid == {"steps": 5, "tags": []}


def test_validated_params_of_the_same_job_come_back_unchanged() -> None:
    schema, calls = counted(type("Once", (StepsForm,), {}), job="demo.once")
    valid = schema.validate({"steps": 2})
    assert len(calls) == 1
    assert schema.validate(valid) is valid
    assert schema.validate(schema.validate(valid)) is valid
    assert len(calls) == 1  # not validated again


def test_a_plain_dict_with_the_same_values_is_validated_again() -> None:
    schema, calls = counted(type("Plain", (StepsForm,), {}), job="demo.plain")
    valid = schema.validate({"steps": 2})
    again = schema.validate(dict(valid))
    assert again == valid
    assert again is not valid
    assert len(calls) == 2


def test_validated_params_of_another_job_are_validated_again() -> None:
    schema, calls = counted(type("Other", (StepsForm,), {}), job="demo.mine")
    foreign = ValidatedParams({"steps": 0}, job="demo.other")
    with pytest.raises(ParamsError) as caught:
        schema.validate(foreign)
    assert "steps" in caught.value.errors
    assert len(calls) == 1
    accepted = ValidatedParams({"steps": 4}, job="demo.other")
    assert schema.validate(accepted) is not accepted
    assert len(calls) == 2


def test_a_schema_without_a_job_name_always_validates() -> None:
    schema = ParamSchema.from_function(launch)
    valid = schema.validate({"steps": 1})
    assert valid.job == ""
    assert schema.validate(valid) is not valid


def test_a_changed_validated_dict_is_validated_again() -> None:
    schema = ParamSchema.from_function(launch, job="demo.launch")
    valid = schema.validate({"steps": 1, "tags": ["a"]})
    valid["steps"] = -1  # still an int: validation keeps it, but it is checked again
    assert schema.validate(valid) is not valid
    nested = schema.validate({"tags": ["a"]})
    nested["tags"].append({"not": "a string"})
    with pytest.raises(ParamsError):
        schema.validate(nested)
    junk = schema.validate({"steps": 1})
    junk["steps"] = object()
    with pytest.raises(ParamsError):
        schema.validate(junk)


def test_validate_form_answers_what_validate_passes_through() -> None:
    schema, calls = counted(type("Posted", (StepsForm,), {}), job="demo.posted")
    form = schema.form(data={"steps": "7"})
    valid = schema.validate_form(form)
    assert isinstance(valid, ValidatedParams)
    assert valid == {"steps": 7}
    assert schema.validate(valid) is valid
    assert len(calls) == 1  # the form's clean only


def test_a_sealed_value_is_sealed_once() -> None:
    schema = ParamSchema.from_function(secret, job="demo.secret")
    valid = schema.validate({"password": "hunter2"})
    assert is_sealed(valid["password"])
    assert schema.validate(valid) is valid
    assert unseal(schema.validate(dict(valid))["password"]) == "hunter2"


def test_validated_params_travel_as_plain_json_and_copy_with_their_mark() -> None:
    schema = ParamSchema.from_function(launch, job="demo.launch")
    valid = schema.validate({"steps": 5, "tags": ["x"]})
    assert json.loads(json.dumps(valid)) == {"steps": 5, "tags": ["x"]}
    for copied in (copy.deepcopy(valid), pickle.loads(pickle.dumps(valid))):  # noqa: S301
        assert copied == valid
        assert isinstance(copied, ValidatedParams)
        assert schema.validate(copied) is copied


def test_params_error_goes_onto_the_form() -> None:
    form = StepsForm(data={"steps": "3"})
    assert form.is_valid()
    ParamsError(
        {"steps": ["Too many.", "Really."], "__all__": ["Not now."], "gone": ["Unknown."]}
    ).add_to_form(form)
    assert form.errors["steps"] == ["Too many.", "Really."]
    assert form.non_field_errors() == ["Not now.", "Unknown."]
    assert "steps" not in form.cleaned_data
