"""CSV rows <-> Dixels: ``_``-prefixed columns are meta, the others tags; Montage exports are recognised by header.

Row numbers in errors count the header as row 1, like a spreadsheet does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from diana_core import DicomLevel, Dixel
from diana_core.errors import ValidationError

MONTAGE_HEADERS = {"Accession Number", "Patient MRN", "Exam Code", "Exam Description", "Exam Completed Date"}
"""Columns of a Montage CSV download; a header holding "Accession Number" and one other of these is Montage's."""

_HEADER_RE = re.compile(r"^[A-Za-z_][A-Za-z_ ]*$")
DEFAULT_COLUMN = "AccessionNumber"


def is_montage_header(fieldnames: Iterable[str]) -> bool:
    names = set(fieldnames)
    return "Accession Number" in names and len(names & MONTAGE_HEADERS) >= 2


def looks_like_header(cells: list[str]) -> bool:
    """A one-column file may have no header: a first cell with digits is an accession number, not a name."""
    return len(cells) != 1 or bool(_HEADER_RE.match(cells[0].strip()))


def row_to_dixel(row: Mapping[str, str | None], level: DicomLevel, montage: bool) -> Dixel:
    """One CSV record as a Dixel; empty cells are left out."""
    if montage:
        dixel = Dixel.from_montage_csv({k: v for k, v in row.items() if v not in (None, "")})
        dixel.level = level
        return dixel
    meta: dict[str, Any] = {}
    tags: dict[str, Any] = {}
    for key, value in row.items():
        if value in (None, ""):
            continue
        if key.startswith("_"):
            meta[key[1:]] = value
        else:
            tags[key] = value
    return Dixel(meta=meta, tags=tags, level=level)


def dixel_to_row(item: Dixel) -> dict[str, str]:
    """Columns for one Dixel: tags by keyword, meta as ``_``-prefixed keys; structures as JSON text."""
    row = {k: _cell(v) for k, v in item.tags.items()}
    row.update({f"_{k}": _cell(v) for k, v in item.meta.items()})
    return row


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)


def check_required(row: Mapping[str, str | None], required: Iterable[str], rownum: int, where: str) -> None:
    """ValidationError naming the row and column when a required cell is missing or empty."""
    for column in required:
        if row.get(column) in (None, ""):
            raise ValidationError(f"{where}: row {rownum} has no value for required column {column!r}")

