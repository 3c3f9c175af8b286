"""CSV writers that neutralise spreadsheet formulas: every CSV export goes through here (issue 18).

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a formula by Excel, LibreOffice
and Google Sheets (CSV injection: `=HYPERLINK(...)`, `=cmd|' /C calc'!A0`). Case subjects, names, actors and
AI text all reach exports, so a text cell with such a start gets a leading apostrophe, which spreadsheets show
as text and do not evaluate (OWASP's advice). Numbers stay numbers. `tests/security/test_csv_formulas.py`
fails if a module writes CSV with the plain `csv` writers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from typing import IO, Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class Writer:
    """csv.writer with every cell neutralised."""

    def __init__(self, fh: IO[str], **fmt: Any) -> None:
        self._w = csv.writer(fh, **fmt)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._w.writerow([cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class DictWriter(csv.DictWriter):  # type: ignore[type-arg]
    """csv.DictWriter with every cell neutralised."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({k: cell(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:  # csv.DictWriter.writerows would bypass writerow
            self.writerow(row)
