"""Bounded, strict reading of worklist text: UTF-8 lines of capped length, streamed from a binary file.

A worklist is short rows of text. Binary data, another encoding, or one enormous line is a wrong file, reported as a
``ConfigError`` naming the file, the row and how to fix it, after reading at most the cap (never the whole line).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import BinaryIO

from diana_core import csvcells
from diana_core.errors import ConfigError

DEFAULT_MAX_FIELD = 128 * 1024
"""Bytes allowed in one line (and one field) of a worklist; the csv module's own default field limit."""

_BOM = b"\xef\xbb\xbf"
_LONE_CR = re.compile(r"(?<=\r)(?!\n)")

_HOW_TO_FIX_ENCODING = "save it as UTF-8 text (in Excel: Save As 'CSV UTF-8')"


class _BadText(Exception):
    """Raised inside the line iterator; ``records`` adds the row number and turns it into a ConfigError."""


class BoundedLines:
    """Iterator of decoded lines (with their endings, as ``csv.reader`` wants) from a binary file.

    Each line is read with ``readline(cap + 1)``, so memory stays bounded whatever the file holds; ``record_bytes``
    counts what the current CSV record has used so far (a quoted field may span lines) and is reset by the caller.
    """

    def __init__(self, handle: BinaryIO, max_field: int = DEFAULT_MAX_FIELD) -> None:
        self.handle = handle
        self.max_field = max_field
        self.max_record = 8 * max_field
        self.line = 0
        self.record_bytes = 0
        self._pending: list[str] = []
        self._deferred: _BadText | None = None  # met while peeking: raised when reading reaches that line
        if csv.field_size_limit() < max_field:
            csv.field_size_limit(max_field)

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._pending:
            return self._pending.pop(0)
        if self._deferred is not None:
            error, self._deferred = self._deferred, None
            raise error
        raw = self.handle.readline(self.max_field + 1)
        if not raw:
            raise StopIteration
        self.line += 1
        if self.line == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        if len(raw) > self.max_field and not raw.endswith(b"\n"):
            raise _BadText(f"line {self.line} is longer than {self.max_field} bytes; a worklist holds one short row "
                           f"per item: check that this is the right file (or raise max_field_size)")
        self.record_bytes += len(raw)
        if self.record_bytes > self.max_record:
            raise _BadText(f"one record spans more than {self.max_record} bytes (from line {self.line}); "
                           f"look for an unbalanced double quote")
        if b"\x00" in raw:
            raise _BadText(f"line {self.line} holds NUL bytes: this is a binary file, not CSV text")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _BadText(f"line {self.line} is not UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1}); "
                           f"{_HOW_TO_FIX_ENCODING}") from None
        if "\r" in text[:-2]:  # old Mac line endings: split so each record is its own line
            parts = [p for p in _LONE_CR.split(text) if p]
            self._pending.extend(parts[1:])
            return parts[0]
        return text


    def first_line(self) -> str:
        """The first line, left in place for reading (a bad line's error is kept for when reading reaches it)."""
        try:
            line = next(self)
        except StopIteration:
            return ""
        except _BadText as exc:
            self._deferred = exc
            return ""
        self._pending.insert(0, line)
        self.record_bytes = 0
        return line


DELIMITERS = ",;\t"
"""Separators a worklist may use: Excel writes ';' where the decimal mark is a comma, and tabs when copied."""


def sniff_delimiter(lines: BoundedLines) -> str:
    """The separator the header line uses (csv.Sniffer over ``DELIMITERS``); ',' for a single column."""
    header = lines.first_line()
    try:
        return csv.Sniffer().sniff(header, delimiters=DELIMITERS).delimiter if header.strip() else ","
    except csv.Error:  # one column (or a headerless list of accession numbers): nothing to split on
        return ","


def read_records(lines: BoundedLines, where: str, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) for the non-blank records of a worklist; the header is row 1.

    Undecodable bytes, over-long lines and csv-module errors become a ConfigError naming ``where`` and the row.
    """
    reader = csv.reader(lines, delimiter=delimiter)
    n = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except _BadText as exc:
            raise ConfigError(f"{where}: row {n + 1}: {exc}") from None
        except csv.Error as exc:
            raise ConfigError(f"{where}: row {n + 1} (line {lines.line}) is not valid CSV ({exc}); "
                              f"check its quotes and separators") from None
        n += 1
        lines.record_bytes = 0
        if cells and any(c.strip() for c in cells):
            yield n, [csvcells.restore(c) for c in cells]  # our own defused cells read back as written
