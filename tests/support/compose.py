"""Validates a Compose file without Docker, against the Compose specification's JSON Schema
(compose-spec/compose-spec.json beside this module, vendored unmodified; its README says from
which commit). tests/integration/devstack/test_compose.py uses it when no Compose client is
installed, and always to prove that it refuses broken files.

Like Compose, the file is read as YAML with `<<` merge keys resolved (PyYAML's safe loader does);
`${VAR}` references are left as written, which the schema accepts wherever a variable may stand.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml

SCHEMA_FILE = Path(__file__).resolve().parent / "compose-spec" / "compose-spec.json"


class ComposeFileError(ValueError):
    """The text is not a Compose document at all (not YAML, or not a mapping)."""


def load_compose(text: str) -> dict[str, Any]:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ComposeFileError(f"not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise ComposeFileError(
            f"a Compose file is a mapping at the top level, not {type(document).__name__}"
        )
    return document


@cache
def compose_validator() -> jsonschema_rs.Validator:
    """Draft 7, as the schema declares; offline: its references are all local."""
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return jsonschema_rs.Draft7Validator(schema, offline=True)


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Every way `document` breaks the Compose schema, each as "<path>: <message>" with the path
    of the offending value (e.g. "services.web.ports"); empty when it is valid."""
    return [
        f"{'.'.join(str(part) for part in error.instance_path) or '(top level)'}: {error.message}"
        for error in compose_validator().iter_errors(document)
    ]
