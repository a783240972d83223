"""`ParamSchema`: the parameters of one job, and every way in and out of them."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS

from ..sealing import SealError, is_sealed, seal, unseal, unseal_for
from .entries import _NO_DEFAULT, _form_entry, _function_entry, _shape_problem
from .errors import ParamsError, _form_errors
from .fields import _ParamsForm
from .hints import _type_hints
from .info import ParamInfo, _Entry
from .json_schema import _property_schema
from .validated import ValidatedParams
from .values import _UNCONVERTIBLE, _jsonish, _mask_value, to_json_value
from .widgets import (
    _KEPT,
    _LEFT_EMPTY,
    STORED_SECRET_HELP,
    STORED_SECRET_PLACEHOLDER,
    _display,
    write_only,
)

REQUIRED = str(forms.Field.default_error_messages["required"])


class ParamSchema:
    """The parameters of one job; build with `from_function` or `from_form`."""

    def __init__(
        self, form_class: type[forms.Form], entries: Iterable[_Entry], *, job: str = ""
    ) -> None:
        self.form_class = form_class
        self.job = job  # the job these parameters belong to: sensitive values are sealed for it
        self._entries = tuple(entries)
        self.params: tuple[ParamInfo, ...] = tuple(e.info for e in self._entries)
        self.sensitive: frozenset[str] = frozenset(p.name for p in self.params if p.sensitive)
        self._names = frozenset(p.name for p in self.params)

    def __repr__(self) -> str:
        return f"<ParamSchema {', '.join(p.name for p in self.params)}>"

    # --- construction

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        *,
        skip_first: bool = True,
        job: str = "",
        sensitive: Iterable[str] = (),
    ) -> ParamSchema:
        """Read `fn`'s typed parameters (after the context); TypeError names what is wrong.
        `sensitive` names parameters to treat as `Param(sensitive=True)` (`@job(sensitive=)`)."""
        where = f"Job function {fn.__module__}.{fn.__qualname__}"
        parameters = list(inspect.signature(fn).parameters.values())
        if skip_first:
            if not parameters:
                raise TypeError(f"{where}: must take the job context as its first parameter.")
            parameters = parameters[1:]
        hidden = frozenset(sensitive)
        unknown = hidden - {p.name for p in parameters}
        if unknown:
            raise TypeError(f"{where}: sensitive names no parameter: {sorted(unknown)}")
        hints = _type_hints(fn, {p.name for p in parameters}, where)
        fields: dict[str, forms.Field] = {}
        defaults: dict[str, Any] = {}
        entries = []
        for parameter in parameters:
            prefix = f"{where}: parameter {parameter.name!r}"
            entry, fields[parameter.name], python_default = _function_entry(
                parameter, hints, prefix, sensitive=parameter.name in hidden
            )
            if python_default is not _NO_DEFAULT and not entry.info.nullable:
                defaults[parameter.name] = python_default
            entries.append(entry)
        form_class = cast(
            type[forms.Form],
            type(
                f"{fn.__name__.title().replace('_', '')}ParamsForm",
                (_ParamsForm,),
                {**fields, "param_defaults": defaults},
            ),
        )
        return cls(form_class, entries, job=job)

    @classmethod
    def from_form(
        cls, form_class: type[forms.Form], *, sensitive: Iterable[str] = (), job: str = ""
    ) -> ParamSchema:
        """Use an explicit Form's own fields; `sensitive` names the ones to mask."""
        hidden = frozenset(sensitive)
        unknown = hidden - set(form_class.base_fields)
        if unknown:
            raise TypeError(
                f"{form_class.__qualname__}: sensitive names no field: {sorted(unknown)}"
            )
        entries = [
            _form_entry(name, form_field, sensitive=name in hidden)
            for name, form_field in form_class.base_fields.items()
        ]
        return cls(form_class, entries, job=job)

    # --- the ways in

    def form(
        self,
        data: Mapping[str, Any] | None = None,
        *,
        initial: Mapping[str, Any] | None = None,
        prefix: str | None = None,
    ) -> forms.Form:
        """The launch form, bound to POST `data` or showing JSON `initial` (a schedule's kwargs).

        A sensitive value never reaches the browser: every sensitive field has a write-only
        widget (it renders no value, whatever its type), and a sensitive value in `initial`
        is not shown but kept on the server: left empty, the field keeps it
        (`validate_form` puts the stored, sealed value back)."""
        fields = self.form_class.base_fields
        given = initial or {}
        shown = {
            k: _display(fields[k], v)
            for k, v in given.items()
            if k in fields and k not in self.sensitive
        }
        form = self.form_class(data, initial=shown or None, prefix=prefix)
        kept: dict[str, Any] = {}
        for name in self.sensitive & set(form.fields):
            form_field = form.fields[name]
            form_field.widget = write_only(form_field.widget)
            stored = given.get(name)
            if stored in (None, "", []):
                continue
            try:
                unseal_for(stored, self.job, name, unbound_ok=True)
            except SealError as error:
                form_field.help_text = f"{form_field.help_text} {error}".strip()
                continue
            kept[name] = copy.deepcopy(stored)
            form_field.required = False
            form_field.help_text = f"{form_field.help_text} {STORED_SECRET_HELP}".strip()
            form_field.widget.attrs.setdefault("placeholder", STORED_SECRET_PLACEHOLDER)
        setattr(form, _KEPT, kept)
        return form

    def validate(self, data: Mapping[str, Any]) -> ValidatedParams:
        """Strictly check API, schedule or code input; answer JSON kwargs of every parameter,
        sensitive ones sealed (a value sealed before is checked and kept as it is, so a retry
        or a schedule sends exactly what it was given).

        Validated once: a launch is checked where it comes in (view, API, schedule) and the
        service and enqueue path then hands over what that answered. Given this job's
        `ValidatedParams`, unchanged since, it answers that very dict (see `validated`)."""
        if isinstance(data, ValidatedParams) and data.checked_for(self.job):
            return data
        values = self.to_json(self._clean(data, unbound_ok=False))
        sealed = self.seal(values)
        for name in self.sensitive:
            given: Any = data.get(name)
            if is_sealed(given) and unseal(given) == values.get(name):
                sealed[name] = dict(given)
        return ValidatedParams(sealed, job=self.job)

    def validate_form(self, form: forms.Form) -> ValidatedParams | None:
        """JSON kwargs from a bound launch form (sensitive ones sealed), or None: its errors
        stay on it for display. A sensitive field left empty that had a stored value (see
        `form`) keeps that stored, sealed value. The answer is as `validate` gives it, so the
        launch path does not check it again."""
        if not form.is_valid():
            return None
        values = {k: v for k, v in form.cleaned_data.items() if k in self._names}
        sealed = self.seal(self.to_json(values))
        kept: dict[str, Any] = getattr(form, _KEPT, {})
        refused: dict[str, list[str]] = {}
        for name, stored in kept.items():
            if form[name].data in _LEFT_EMPTY:
                try:  # bound to this job and parameter, as `validate` requires
                    unseal_for(stored, self.job, name, unbound_ok=False)
                except SealError as error:
                    refused[name] = [str(error)]
                sealed[name] = copy.deepcopy(stored)
        if refused:
            ParamsError(refused).add_to_form(form)
            return None
        return ValidatedParams(sealed, job=self.job)

    def to_python(self, json_kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """In the worker: the message's JSON kwargs as the exact values the job declared,
        sealed ones opened. Re-validates, since a message may predate a change to the job."""
        return self._clean(json_kwargs, unbound_ok=True)  # a message sent before binding

    def seal(self, json_kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The kwargs with every sensitive value that is set sealed for its job and parameter
        (see `sealing`)."""
        return {
            k: seal(v, self.job, k) if k in self.sensitive and v not in (None, "", []) else v
            for k, v in json_kwargs.items()
        }

    def unsealed(self, json_kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The kwargs with sealed values opened: only for code that must compare or re-enter
        them, never for display (SealError if one cannot be opened)."""
        return {k: unseal(v) for k, v in json_kwargs.items()}

    # --- the ways out

    def to_json(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Python values as JSON-safe kwargs, in parameter order."""
        self._refuse_unknown(values)
        return {p.name: to_json_value(values[p.name]) for p in self.params if p.name in values}

    def mask(self, json_kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The kwargs with every sensitive (or sealed) value hidden: for pages, logs and API
        answers. Call it through `registry.masked_params`."""
        return {
            k: _mask_value(v) if k in self.sensitive or is_sealed(v) else v
            for k, v in json_kwargs.items()
        }

    def json_schema(self) -> dict[str, Any]:
        """A JSON Schema of the kwargs `validate` accepts: for the API's OpenAPI document."""
        return {
            "type": "object",
            "properties": {e.info.name: _property_schema(e) for e in self._entries},
            "required": [p.name for p in self.params if p.required],
            "additionalProperties": False,
        }

    # --- internals

    def _refuse_unknown(self, data: Mapping[str, Any]) -> None:
        unknown = sorted(str(k) for k in data if k not in self._names)
        if unknown:
            raise ParamsError({NON_FIELD_ERRORS: [f"Unknown parameter(s): {', '.join(unknown)}"]})

    def _clean(self, data: Mapping[str, Any], *, unbound_ok: bool) -> dict[str, Any]:
        """Validate a dict of JSON (or Python) values through the form; the cleaned values.
        A sealed value must have been sealed for this job and parameter (`unbound_ok`: or
        before binding existed, for messages already in the broker)."""
        self._refuse_unknown(data)
        prepared: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        for entry in self._entries:
            name = entry.info.name
            if name in data:
                try:
                    given = (
                        unseal_for(data[name], self.job, name, unbound_ok=unbound_ok)
                        if name in self.sensitive
                        else data[name]
                    )
                except SealError as error:
                    errors[name] = [str(error)]
                    continue
                value = _jsonish(given)
                if value is _UNCONVERTIBLE:
                    errors[name] = [_shape_problem(entry, data[name]) or "Unsupported value."]
                elif problem := _shape_problem(entry, value):
                    errors[name] = [problem]
                else:
                    prepared[name] = value
            elif entry.info.required:
                errors[name] = [REQUIRED]
            elif entry.default is not None:
                prepared[name] = entry.default()
        form = self.form_class(prepared)
        if not form.is_valid() or errors:
            raise ParamsError({**_form_errors(form), **errors})
        return {k: v for k, v in form.cleaned_data.items() if k in self._names}
