"""CSV files the dashboard hands out, safe to open in a spreadsheet.

Spreadsheets (Excel, LibreOffice, Google Sheets) run a cell that starts with `=`, `+`, `-` or
`@` as a formula, and a leading tab or carriage return can hide such a start; a run's error,
schedule name or launcher is text anyone with a launch right can choose, so an export could
carry `=HYPERLINK(...)` or worse to whoever opens it (CSV injection). Following OWASP, such a
text cell is written with a `'` in front: shown as text, and the value is still readable.
Numbers are written as they are (a negative number is data, not a formula).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutral_cell(value: Any) -> Any:
    """`value`, with a `'` in front when it is text a spreadsheet would take for a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeCsvWriter:
    """`csv.writer` whose every text cell goes through `neutral_cell`."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutral_cell(value) for value in row])
