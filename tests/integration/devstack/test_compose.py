"""docker-compose.yml is valid Compose and describes the whole stack.

Validated by the real validator when one is installed: `docker compose` (v2) when it works, else
`docker-compose` (v1); no Docker engine is needed, only the client. On a machine with neither,
by the Compose specification's JSON Schema (tests/support/compose.py, vendored schema), so a
broken compose file can never pass unnoticed. The schema path is also tested on its own, on the
real file and on broken ones, wherever these tests run.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.support.compose import ComposeFileError, load_compose, schema_errors

BASE_DIR = Path(__file__).resolve().parents[3]
COMPOSE_FILE = BASE_DIR / "docker-compose.yml"
SERVICES = {"postgres", "redis", "migrate", "web", "worker", "beat"}
LONG_RUNNING = SERVICES - {"migrate"}


def compose_command() -> list[str] | None:
    """`docker compose` if the v2 plugin answers, else `docker-compose`, else None."""
    if shutil.which("docker") is not None:
        probe = subprocess.run(
            ["docker", "compose", "version"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose") is not None:
        return ["docker-compose"]
    return None


def run_compose(command: list[str], path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`<compose> -f <path> <args>` with a dummy SECRET_KEY (the file has none)."""
    env = {**os.environ, "SECRET_KEY": "dummy"}
    return subprocess.run(
        [*command, "-f", str(path), *args],
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
        env=env,
        timeout=120,
        check=False,
    )


def validation_problems(path: Path) -> tuple[str, list[str]]:
    """(the validator used, what it found wrong): `<compose> config -q` when a Compose client
    is installed, else the Compose schema. No problems means valid."""
    command = compose_command()
    if command is None:
        return "the Compose schema", schema_errors(load_compose(path.read_text(encoding="utf-8")))
    result = run_compose(command, path, "config", "-q")
    problems = [] if result.returncode == 0 else [f"{result.stderr}{result.stdout}".strip()]
    return " ".join(command), problems


def service_keys(config_yaml: str) -> dict[str, dict[str, str]]:
    """Each service's top-level keys and their inline values, read from `config` output.

    Both Compose versions print block-style YAML, so indentation alone says which lines are
    services and which are their keys (a nested mapping's key has an empty value).
    """
    lines = config_yaml.splitlines()
    start = lines.index("services:") + 1
    services: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    service_indent: int | None = None
    key_indent: int | None = None
    for line in lines[start:]:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent == 0:
            break  # the next top-level key (networks, volumes, ...)
        if service_indent is None:
            service_indent = indent
        if indent == service_indent:
            current = services.setdefault(line.strip().rstrip(":"), {})
            key_indent = None
        elif current is not None:
            if key_indent is None:
                key_indent = indent
            if indent == key_indent and ":" in line:
                key, _, value = line.strip().partition(":")
                current[key] = value.strip().strip("'\"")
    return services


def described_services() -> Mapping[str, Mapping[str, object]]:
    """Each service's top-level keys and values, as Compose resolves them: from `config` when a
    Compose client is installed, else from the file itself (merge keys resolved)."""
    command = compose_command()
    if command is None:
        document = load_compose(COMPOSE_FILE.read_text(encoding="utf-8"))
        services: dict[str, dict[str, Any]] = document["services"]
        return services
    listed = run_compose(command, COMPOSE_FILE, "config", "--services")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) == SERVICES
    config = run_compose(command, COMPOSE_FILE, "config")
    assert config.returncode == 0, config.stderr
    return service_keys(config.stdout)


@pytest.mark.processes  # may run the Compose client: not in make test-fast
def test_compose_file_is_valid() -> None:
    validator, problems = validation_problems(COMPOSE_FILE)

    assert problems == [], f"{validator} refused docker-compose.yml:\n" + "\n".join(problems)


@pytest.mark.processes
def test_compose_file_defines_the_stack() -> None:
    services = described_services()

    assert set(services) == SERVICES
    for name in sorted(LONG_RUNNING):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
        assert services[name].get("restart") == "unless-stopped", f"{name} is not restarted"
    assert "healthcheck" not in services["migrate"]
    assert services["migrate"].get("restart", "no") == "no", "migrate must run once"


def real_document() -> dict[str, Any]:
    return load_compose(COMPOSE_FILE.read_text(encoding="utf-8"))


def test_the_schema_accepts_the_compose_file() -> None:
    assert schema_errors(real_document()) == []


def ports_of_wrong_type(document: dict[str, Any]) -> None:
    document["services"]["web"]["ports"] = "abc"


def unknown_top_level_key(document: dict[str, Any]) -> None:
    document["servics"] = {"web": {"image": "taskdeck:latest"}}


def unquoted_no(document: dict[str, Any]) -> None:
    document["services"]["migrate"]["restart"] = False  # what YAML makes of `restart: no`


def unknown_condition(document: dict[str, Any]) -> None:
    document["services"]["web"]["depends_on"]["migrate"]["condition"] = "service_done"


def misspelt_healthcheck_key(document: dict[str, Any]) -> None:
    document["services"]["redis"]["healthcheck"]["intervall"] = "5s"


@pytest.mark.parametrize(
    ("breakage", "where"),
    [
        (ports_of_wrong_type, "services.web.ports"),
        (unknown_top_level_key, "(top level)"),
        (unquoted_no, "services.migrate.restart"),
        (unknown_condition, "services.web.depends_on"),
        (misspelt_healthcheck_key, "services.redis.healthcheck"),
    ],
)
def test_the_schema_refuses_a_broken_file(
    breakage: Callable[[dict[str, Any]], None], where: str
) -> None:
    document = copy.deepcopy(real_document())
    breakage(document)

    errors = schema_errors(document)

    assert errors, f"{breakage.__name__} passed the schema"
    assert any(error.startswith(f"{where}: ") for error in errors), errors


@pytest.mark.parametrize(
    ("text", "problem"),
    [("services: [unclosed\n", "not valid YAML"), ("- web\n- worker\n", "not list")],
)
def test_a_file_that_is_not_a_compose_mapping_is_refused(text: str, problem: str) -> None:
    with pytest.raises(ComposeFileError, match=problem):
        load_compose(text)


@pytest.mark.processes
def test_the_validator_in_use_refuses_a_broken_file(tmp_path: Path) -> None:
    """Whichever validator this machine has (client or schema) refuses a file whose web ports
    are a string, not a list."""
    broken = tmp_path / "docker-compose.yml"
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    published = '    ports:\n      - "${WEB_PORT:-8000}:8000"\n'
    assert published in text, "the test expects the web service's ports as written today"
    broken.write_text(text.replace(published, "    ports: abc\n"), encoding="utf-8")

    validator, problems = validation_problems(broken)

    assert problems, f"{validator} accepted ports: abc"
