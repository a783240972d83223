"""Job parameters: one schema per job, from its type hints or from an explicit Django Form.

The same schema renders the launch form, validates every way in (HTML POST, API JSON, schedule
kwargs), gives the JSON-safe kwargs that travel in the Celery message, and turns them back into
exact Python values in the worker. Keeping a single source means the form, the API and the
worker can never disagree about what a parameter accepts.

The modules import one way: `values`, `info`, `errors`, `validated` -> `hints` (annotations)
-> `widgets` -> `fields` -> `build` (spec to field) -> `entries` -> `json_schema` -> `schema`.
"""

from __future__ import annotations

from .errors import ParamsError
from .fields import (
    EnumChoiceField,
    ExclusiveMaxValidator,
    ExclusiveMinValidator,
    LinesField,
    MaxItemsValidator,
    MinItemsValidator,
    MultipleEnumChoiceField,
    StrictBooleanField,
    StrictDateField,
    StrictDateTimeField,
    StrictFloatField,
    StrictNullBooleanField,
)
from .hints import SUPPORTED
from .info import Param, ParamInfo
from .schema import REQUIRED, ParamSchema
from .validated import ValidatedParams
from .values import MASK, to_json_value
from .widgets import (
    STORED_SECRET_HELP,
    STORED_SECRET_PLACEHOLDER,
    DateInput,
    DateTimeInput,
    SecretBooleanSelect,
    StrictCheckboxInput,
    StrictNullBooleanSelect,
    write_only,
)

__all__ = [
    "MASK",
    "REQUIRED",
    "STORED_SECRET_HELP",
    "STORED_SECRET_PLACEHOLDER",
    "SUPPORTED",
    "DateInput",
    "DateTimeInput",
    "EnumChoiceField",
    "ExclusiveMaxValidator",
    "ExclusiveMinValidator",
    "LinesField",
    "MaxItemsValidator",
    "MinItemsValidator",
    "MultipleEnumChoiceField",
    "Param",
    "ParamInfo",
    "ParamSchema",
    "ParamsError",
    "SecretBooleanSelect",
    "StrictBooleanField",
    "StrictCheckboxInput",
    "StrictDateField",
    "StrictDateTimeField",
    "StrictFloatField",
    "StrictNullBooleanField",
    "StrictNullBooleanSelect",
    "ValidatedParams",
    "to_json_value",
    "write_only",
]
