"""`ParamsError`: parameters that do not fit a schema, field by field, and the way such errors
move between a Django form and the error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS


class ParamsError(ValueError):
    """Parameters that do not fit the schema; `errors` maps each field (or "__all__") to
    its messages, so an API can answer with all problems at once."""

    def __init__(self, errors: Mapping[str, Sequence[str]]) -> None:
        self.errors: dict[str, list[str]] = {k: [str(m) for m in v] for k, v in errors.items()}
        super().__init__(
            "; ".join(
                message if name == NON_FIELD_ERRORS else f"{name}: {message}"
                for name, messages in self.errors.items()
                for message in messages
            )
        )

    def add_to_form(self, form: forms.BaseForm) -> None:
        """Put every message on `form`: on its field, or on the whole form ("__all__", or a
        parameter the form does not show). The one place a ParamsError becomes form errors, so
        pages and admin show a service's refusal the same way."""
        for name, messages in self.errors.items():
            target = name if name in form.fields else None
            for message in messages:
                form.add_error(target, message)


def _form_errors(form: forms.Form) -> dict[str, list[str]]:
    return {
        name: [error["message"] for error in errors]
        for name, errors in form.errors.get_json_data().items()
    }
