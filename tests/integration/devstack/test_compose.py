"""docker-compose.yml is valid Compose and describes the whole stack.

Runs the real validator: `docker compose` (v2) when it works, else `docker-compose` (v1). No
Docker engine is needed, only the client. A machine with neither fails these tests instead of
skipping them, so a broken compose file can never pass unnoticed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes  # starts its own processes: not in make test-fast

BASE_DIR = Path(__file__).resolve().parents[3]
COMPOSE_FILE = BASE_DIR / "docker-compose.yml"
SERVICES = {"postgres", "redis", "migrate", "web", "worker", "beat"}
LONG_RUNNING = SERVICES - {"migrate"}


def compose_command() -> list[str]:
    """`docker compose` if the v2 plugin answers, else `docker-compose`; fails if neither."""
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
    pytest.fail(
        "Neither `docker compose` (the Compose v2 plugin) nor `docker-compose` is installed, so "
        "docker-compose.yml cannot be validated. Install one (e.g. Debian's `docker-compose` "
        "package or the `docker-compose-plugin`)."
    )


def run_compose(*args: str) -> subprocess.CompletedProcess[str]:
    """`<compose> -f docker-compose.yml <args>` with a dummy SECRET_KEY (the file has none)."""
    env = {**os.environ, "SECRET_KEY": "dummy"}
    return subprocess.run(
        [*compose_command(), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        cwd=BASE_DIR,
        env=env,
        timeout=120,
        check=False,
    )


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


def test_compose_file_is_valid() -> None:
    result = run_compose("config", "-q")

    assert result.returncode == 0, f"compose config failed:\n{result.stderr}{result.stdout}"


def test_compose_file_defines_the_stack() -> None:
    listed = run_compose("config", "--services")
    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) == SERVICES

    config = run_compose("config")
    assert config.returncode == 0, config.stderr
    services = service_keys(config.stdout)
    assert set(services) == SERVICES
    for name in sorted(LONG_RUNNING):
        assert "healthcheck" in services[name], f"{name} has no healthcheck"
        assert services[name].get("restart") == "unless-stopped", f"{name} is not restarted"
    assert "healthcheck" not in services["migrate"]
    assert services["migrate"].get("restart", "no") == "no", "migrate must run once"
