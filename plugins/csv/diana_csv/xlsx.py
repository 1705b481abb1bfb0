"""Excel worklists: the first sheet of an ``.xlsx`` file read as rows of text (openpyxl, the ``xlsx`` extra).

Cells become the text a user sees: whole numbers without ``.0`` (accession numbers typed as numbers), dates in ISO
format. Rows are numbered as Excel numbers them, so errors point at the row the user can find.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from diana_core.errors import ConfigError

XLSX_SUFFIXES = (".xlsx", ".xlsm")
INSTALL_HINT = "pip install 'diana-dicom-csv[xlsx]'"


def is_xlsx(path: Path) -> bool:
    return path.suffix.lower() in XLSX_SUFFIXES


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def read_xlsx(path: Path, where: str) -> Iterator[tuple[int, list[str]]]:
    """(Excel row number, cells as text) for the non-blank rows of the first sheet."""
    try:
        from openpyxl import load_workbook
    except ImportError:
        raise ConfigError(f"{where}: reading Excel worklists needs openpyxl: {INSTALL_HINT} "
                          "(or save the sheet as 'CSV UTF-8')") from None
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises zipfile/KeyError/ValueError... for a broken file
        raise ConfigError(f"{where}: not a readable .xlsx workbook ({type(exc).__name__}); "
                          "save it again from Excel, or as 'CSV UTF-8'") from None
    try:
        sheet = book.worksheets[0]
        for n, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_text(v) for v in values]
            while cells and cells[-1] == "":
                cells.pop()
            if any(cells):
                yield n, cells
    finally:
        book.close()
