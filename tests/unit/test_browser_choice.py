"""Which Chromium the browser tests launch (tests/support/chromium.py), given what exists: real
files in a temporary folder stand for /usr/bin/chromium, CHROMIUM_EXECUTABLE's target and
Playwright's own build."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.chromium import (
    CHROMIUM_ARGS,
    ENV_VAR,
    Chromium,
    ChromiumUnavailable,
    Source,
    choose_chromium,
    main,
)

BASE_DIR = Path(__file__).resolve().parents[2]


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def system(tmp_path: Path) -> Path:
    """Where the system Chromium would be; absent unless a test creates it."""
    return tmp_path / "usr" / "bin" / "chromium"


@pytest.fixture
def bundled(tmp_path: Path) -> Path:
    """Where Playwright's own build would be; absent unless a test creates it."""
    return tmp_path / "ms-playwright" / "chromium-1255" / "chrome-linux64" / "chrome"


def test_the_system_chromium_is_kept_when_present(system: Path, bundled: Path) -> None:
    executable(system)
    executable(bundled)

    chosen = choose_chromium(bundled, environ={}, system=system)

    assert chosen == Chromium(Source.SYSTEM, system, CHROMIUM_ARGS)


def test_playwrights_own_build_without_a_system_chromium(system: Path, bundled: Path) -> None:
    executable(bundled)

    chosen = choose_chromium(bundled, environ={}, system=system)

    # No executable path: Playwright launches its own build (its headless shell) itself.
    assert chosen == Chromium(Source.PLAYWRIGHT, None, CHROMIUM_ARGS)


def test_chromium_executable_wins_over_both(tmp_path: Path, system: Path, bundled: Path) -> None:
    chosen_binary = executable(tmp_path / "opt" / "chrome")
    executable(system)
    executable(bundled)

    chosen = choose_chromium(bundled, environ={ENV_VAR: str(chosen_binary)}, system=system)

    assert chosen == Chromium(Source.ENVIRONMENT, chosen_binary, CHROMIUM_ARGS)


def test_an_empty_chromium_executable_counts_as_unset(system: Path, bundled: Path) -> None:
    executable(system)

    assert choose_chromium(bundled, environ={ENV_VAR: " "}, system=system).source is Source.SYSTEM


@pytest.mark.parametrize("state", ["missing", "not executable", "a directory"])
def test_a_wrong_chromium_executable_is_an_error_not_a_fallback(
    tmp_path: Path, system: Path, bundled: Path, state: str
) -> None:
    executable(system)
    executable(bundled)
    target = tmp_path / "chrome"
    if state == "not executable":
        target.write_text("#!/bin/sh\n")
        target.chmod(0o644)
    elif state == "a directory":
        target.mkdir()

    with pytest.raises(ChromiumUnavailable) as raised:
        choose_chromium(bundled, environ={ENV_VAR: str(target)}, system=system)

    assert f"{ENV_VAR} is {target}, which is not an executable file" in str(raised.value)


@pytest.mark.parametrize("state", ["missing", "not executable", "a directory"])
def test_an_unusable_system_path_falls_back_to_playwrights_build(
    system: Path, bundled: Path, state: str
) -> None:
    executable(bundled)
    if state == "not executable":
        system.parent.mkdir(parents=True)
        system.write_text("#!/bin/sh\n")
        system.chmod(0o644)
    elif state == "a directory":
        system.mkdir(parents=True)

    assert choose_chromium(bundled, environ={}, system=system).source is Source.PLAYWRIGHT


def test_neither_chromium_says_what_was_looked_for_and_how_to_get_one(
    system: Path, bundled: Path
) -> None:
    with pytest.raises(ChromiumUnavailable) as raised:
        choose_chromium(bundled, environ={}, system=system)

    message = str(raised.value)
    assert f"{ENV_VAR} is unset" in message
    assert f"{system} is missing" in message
    assert f"({bundled} is missing)" in message
    assert "`.venv/bin/playwright install chromium`" in message
    assert "`chromium` package" in message


def test_the_make_check_exit_status(
    tmp_path: Path, system: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """0: a system Chromium (no download); 1: none, download Playwright's; 2: a broken
    CHROMIUM_EXECUTABLE (a download would not help); 2: bad usage."""
    assert main(["--system"], environ={}, system=system) == 1
    assert "use Playwright's own" in capsys.readouterr().out

    executable(system)
    assert main(["--system"], environ={}, system=system) == 0
    assert f"system Chromium at {system}" in capsys.readouterr().out

    assert main(["--system"], environ={ENV_VAR: str(tmp_path / "nothing")}, system=system) == 2
    assert "not an executable file" in capsys.readouterr().err

    assert main([], environ={}, system=system) == 2


def test_the_make_check_runs_as_a_module(tmp_path: Path) -> None:
    """As the Makefile runs it: from the project folder, with the environment's variable."""
    chosen_binary = executable(tmp_path / "chrome")
    result = subprocess.run(
        [sys.executable, "-m", "tests.support.chromium", "--system"],
        cwd=BASE_DIR,
        env={**os.environ, ENV_VAR: str(chosen_binary)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert f"CHROMIUM_EXECUTABLE Chromium at {chosen_binary}" in result.stdout
