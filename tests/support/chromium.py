"""Which Chromium the browser tests drive, decided in one place for tests/browser/conftest.py and
the Makefile: CHROMIUM_EXECUTABLE when set, else the system's /usr/bin/chromium (Debian's, as CI
installs it), else the build Playwright downloaded for itself (`playwright install chromium`,
which `make test` runs once when there is no system Chromium).

`python -m tests.support.chromium --system` exits 0 when a system Chromium will be used (so the
Makefile skips the download), 1 when the tests need Playwright's own, and 2 when CHROMIUM_EXECUTABLE
names no executable (a download would not help: the tests use what it names).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

ENV_VAR = "CHROMIUM_EXECUTABLE"
SYSTEM_CHROMIUM = Path("/usr/bin/chromium")
# The same switches for every build: headless without a sandbox (root in CI and containers), and
# none of the background traffic a test run has no use for.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
INSTALL_COMMAND = ".venv/bin/playwright install chromium"


class Source(StrEnum):
    ENVIRONMENT = "CHROMIUM_EXECUTABLE"
    SYSTEM = "system"
    PLAYWRIGHT = "Playwright's own"


class ChromiumUnavailable(Exception):
    """No usable Chromium; the message says what was looked for and how to get one."""


@dataclass(frozen=True)
class Chromium:
    """What to launch: `executable` is None for Playwright's own build, which Playwright finds
    itself (for a headless launch it picks its headless shell, not the full browser)."""

    source: Source
    executable: Path | None
    args: tuple[str, ...] = CHROMIUM_ARGS

    def describe(self) -> str:
        return f"{self.source} Chromium" + (f" at {self.executable}" if self.executable else "")


def is_executable_file(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def system_chromium(
    environ: Mapping[str, str] = os.environ, system: Path = SYSTEM_CHROMIUM
) -> Chromium | None:
    """CHROMIUM_EXECUTABLE if set, else `system` if it is an executable file, else None.

    A CHROMIUM_EXECUTABLE that is not an executable file is an error, not a reason to fall back:
    whoever set it meant that browser."""
    configured = environ.get(ENV_VAR, "").strip()
    if configured:
        path = Path(configured)
        if not is_executable_file(path):
            raise ChromiumUnavailable(
                f"{ENV_VAR} is {configured}, which is not an executable file: point it at a "
                f"Chromium binary, or unset it to use {system} or Playwright's own Chromium."
            )
        return Chromium(Source.ENVIRONMENT, path)
    if is_executable_file(system):
        return Chromium(Source.SYSTEM, system)
    return None


def choose_chromium(
    playwright_executable: Path,
    environ: Mapping[str, str] = os.environ,
    system: Path = SYSTEM_CHROMIUM,
) -> Chromium:
    """The Chromium the browser tests launch. `playwright_executable` is where Playwright's own
    build lives once installed (`playwright.chromium.executable_path`)."""
    chosen = system_chromium(environ, system)
    if chosen is not None:
        return chosen
    if is_executable_file(playwright_executable):
        return Chromium(Source.PLAYWRIGHT, None)
    raise ChromiumUnavailable(
        f"No Chromium for the browser tests: {ENV_VAR} is unset, {system} is missing, and "
        f"Playwright's own Chromium is not installed ({playwright_executable} is missing). "
        f"`make test` downloads it once (network needed): run `{INSTALL_COMMAND}` yourself if "
        "it has been removed since (or delete .venv/.playwright-chromium). Alternatively install "
        f"Debian's `chromium` package, or point {ENV_VAR} at a Chromium binary."
    )


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] = os.environ,
    system: Path = SYSTEM_CHROMIUM,
) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args != ["--system"]:
        print("usage: python -m tests.support.chromium --system", file=sys.stderr)
        return 2
    try:
        chosen = system_chromium(environ, system)
    except ChromiumUnavailable as error:
        print(error, file=sys.stderr)
        return 2
    if chosen is None:
        print(f"No system Chromium ({system}, {ENV_VAR}): the browser tests use Playwright's own.")
        return 1
    print(f"The browser tests use the {chosen.describe()}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
