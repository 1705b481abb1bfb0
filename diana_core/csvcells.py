"""The one CSV writer (and reader) for every CSV Diana writes: cells a spreadsheet would run as formulas are defused.

OWASP's CSV-injection rule: a cell starting with ``= + - @``, a tab or a carriage return gets a single quote in
front, so Excel and LibreOffice show it as text. Cells already starting with quotes before such a character get one
more, so ``restore`` (used when Diana reads its own files back: key.csv, worklists) gives the exact original.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

_LIVE = re.compile(r"'*[=+\-@\t\r]")
_DEFUSED = re.compile(r"'+[=+\-@\t\r]")


def neutralize(value: Any) -> Any:
    """``value`` with a leading single quote when a spreadsheet would read it as a formula; numbers (int, float)
    stay numbers (a spreadsheet never evaluates -1024.0), every other text is defused, "-1" included."""
    if isinstance(value, str) and _LIVE.match(value):
        return "'" + value
    return value


def restore(value: str) -> str:
    """The original of a cell ``neutralize`` wrote (other cells unchanged)."""
    return value[1:] if _DEFUSED.match(value) else value


class Writer:
    """``csv.writer`` whose rows are neutralized cell by cell."""

    def __init__(self, fh: IO[str], **kwargs: Any) -> None:
        self._writer = csv.writer(fh, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutralize(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class DictWriter(csv.DictWriter):  # type: ignore[type-arg]
    """``csv.DictWriter`` whose values are neutralized (the header too, through ``writerow``)."""

    def writerow(self, rowdict: Mapping[str, Any]) -> Any:
        return super().writerow({k: neutralize(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts: Iterable[Mapping[str, Any]]) -> None:
        for row in rowdicts:
            self.writerow(row)


def read_dicts(fh: IO[str]) -> Iterator[dict[str, str]]:
    """Rows of a CSV Diana wrote, with neutralized cells restored."""
    for row in csv.DictReader(fh):
        yield {k: restore(v) if isinstance(v, str) else v for k, v in row.items()}
