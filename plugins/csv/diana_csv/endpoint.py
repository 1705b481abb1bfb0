"""CsvFile endpoint: worklists read as a stream of Dixels, and an append-only log of items written with ``put``.

Reading handles a UTF-8 BOM, quoting, a single headerless column of accession numbers, and Montage CSV exports
(via ``Dixel.from_montage_csv``). Writing appends rows to an open file (header once), never rewriting the file.
"""

from __future__ import annotations

import difflib
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from attrs import define, field

from diana_core import DicomLevel, Dixel, Endpoint, csvcells
from diana_core.errors import ConfigError, EndpointUnavailable, NotFound, ValidationError
from diana_core.ports import is_query, refuse_unknown
from diana_csv.lines import DEFAULT_MAX_FIELD, BoundedLines, read_records, sniff_delimiter
from diana_csv.rows import (
    DEFAULT_COLUMN,
    check_required,
    dixel_to_row,
    is_montage_header,
    looks_like_header,
    row_to_dixel,
)
from diana_csv.xlsx import is_xlsx, read_xlsx

logger = logging.getLogger(__name__)


def _level(value: Any) -> DicomLevel:
    return DicomLevel.from_label(value)


@define(kw_only=True)
class CsvFile(Endpoint):
    """A CSV file of items, one per row (tags by DICOM keyword, ``_``-prefixed columns are meta); ',', ';' or tab
    separated (sniffed from the header), or the first sheet of an ``.xlsx`` workbook (the ``xlsx`` extra).

    Fields:
        fp: Path of the CSV file (read as a worklist, or written by put).
        level: DICOM level of the rows (studies by default).
        key: Column that identifies a row (default AccessionNumber; a headerless one-column file's column).
        required: Columns every row must have; a row without one is reported, not dropped silently.
        fieldnames: Columns to write, in order (put); default: the columns of the first item.
        max_field_size: Largest cell in bytes; a longer line is refused naming file and row.
    """

    name: str = "CsvFile"
    fp: str | None = None
    level: DicomLevel = field(default=DicomLevel.STUDIES, converter=_level)
    key: str = DEFAULT_COLUMN
    required: list[str] = field(factory=list)
    fieldnames: list[str] | None = None
    strict: bool = False  # put(): refuse items with columns the header lacks (default: ignore them, as the original)
    max_field_size: int = DEFAULT_MAX_FIELD
    _out: IO[str] | None = field(default=None, init=False, repr=False)
    _writer: Any = field(default=None, init=False, repr=False)
    _columns: list[str] | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False)

    # --- reading ----------------------------------------------------------------------------------------
    def _path(self) -> Path:
        if not self.fp:
            raise ConfigError(f"CsvFile {self.name!r}: no file path (fp) configured")
        return Path(self.fp)

    def _where(self) -> str:
        return f"CsvFile {self.name!r} ({self._path().name})"

    def items(self, required: Sequence[str] | None = None) -> Iterator[Dixel]:
        """Stream the rows as Dixels; ValidationError names the row missing a required column."""
        self.flush()
        path = self._path()
        need = list(self.required if required is None else required)
        if is_xlsx(path):
            if not path.is_file():
                raise NotFound(f"{self._where()}: the file does not exist")
            yield from self._rows_to_dixels(read_xlsx(path, self._where()), need)
            return
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"{self._where()}: the file does not exist") from None
        except OSError as exc:
            raise EndpointUnavailable(f"{self._where()}: cannot read: {exc.strerror}") from exc
        with handle:
            lines = BoundedLines(handle, self.max_field_size)
            yield from self._rows_to_dixels(read_records(lines, self._where(), sniff_delimiter(lines)), need)

    def _rows_to_dixels(self, rows: Iterator[tuple[int, list[str]]], need: list[str]) -> Iterator[Dixel]:
        first = next(rows, None)
        if first is None:
            return
        n, header = first
        header = [h.strip() for h in header]
        if not looks_like_header(header):
            header = [self.key]
            yield from self._dixels(iter([first]), header, need, montage=False)
        montage = is_montage_header(header)
        if need and not montage:
            missing = [c for c in need if c not in header]
            if missing:
                raise ValidationError(self._missing_column(n, missing[0], header))
        yield from self._dixels(rows, header, need, montage)

    def _missing_column(self, n: int, column: str, header: list[str]) -> str:
        """Names the columns found and the closest one (column names, never cell values)."""
        found = ", ".join(repr(h) for h in header[:20]) + (", ..." if len(header) > 20 else "")
        lowered = {h.lower(): h for h in header}
        close = difflib.get_close_matches(column.lower(), list(lowered), n=1, cutoff=0.5)
        text = f"{self._where()}: row {n} (header) has no column {column!r}; columns found: {found}"
        if close and column == self.key:
            return f"{text}; closest: {lowered[close[0]]!r} (use it with --key-column {lowered[close[0]]!r})"
        if close:
            return f"{text}; closest: {lowered[close[0]]!r}"
        return text + (" (choose the key column with --key-column NAME)" if column == self.key else "")

    def _dixels(self, rows: Iterator[tuple[int, list[str]]], header: list[str], need: list[str],
                montage: bool) -> Iterator[Dixel]:
        if montage:
            need = ["Accession Number" if c == DEFAULT_COLUMN else c for c in need]
        for n, cells in rows:
            if len(cells) > len(header):
                raise ValidationError(f"{self._where()}: row {n} has {len(cells)} fields, the header {len(header)}")
            row = dict(zip(header, cells, strict=False))
            check_required(row, need, n, self._where())
            yield row_to_dixel(row, self.level, montage)

    def __iter__(self) -> Iterator[Dixel]:
        return self.items()

    def check(self) -> bool:
        """True when the file is readable, or can be created in an existing folder."""
        path = self._path()
        if path.exists():
            return os.access(path, os.R_OK)
        return path.parent.is_dir() and os.access(path.parent, os.W_OK)

    def diagnose(self) -> tuple[bool, str]:
        """(available, why not): the file is unreadable, or missing with no writable folder to create it in."""
        path = self._path()
        if path.is_dir():
            return False, f"{str(path)!r} is a folder, not a CSV file"
        if path.exists():
            return (True, "") if os.access(path, os.R_OK) else (False, f"{str(path)!r} is not readable")
        if not path.parent.is_dir():
            return False, f"{str(path)!r} does not exist, nor does its folder"
        if not os.access(path.parent, os.W_OK):
            return False, f"{str(path)!r} does not exist and its folder is not writable"
        return True, ""

    def _rows_or_empty(self) -> Iterator[Dixel]:
        try:
            yield from self.items()
        except NotFound:
            return

    @staticmethod
    def _matches(dixel: Dixel, ident: str, key: str) -> bool:
        if str(dixel.tag(key, "")) == ident or dixel.meta.get("ID") == ident:
            return True
        try:
            return dixel.oid() == ident
        except ValidationError:
            return False

    def get(self, item: Any, **kwargs: Any) -> Dixel:
        """The first row whose key column (AccessionNumber) or Orthanc id equals the item's; NotFound otherwise."""
        refuse_unknown(self._where(), "get", kwargs)
        ident = (item.sid() or item.oid()) if isinstance(item, Dixel) else str(item)
        for dixel in self._rows_or_empty():
            if self._matches(dixel, ident, self.key):
                return dixel
        shown = item.summary()["id"] if isinstance(item, Dixel) else "given"
        raise NotFound(f"{self._where()}: no row for the {shown} item")  # accession numbers stay out

    def exists(self, item: Any, **kwargs: Any) -> bool:
        """True if a row has the item's accession number or Orthanc id (a missing file holds nothing); a query
        mapping asks ``find``."""
        refuse_unknown(self._where(), "exists", kwargs)
        if is_query(item):
            return self.exists_query(item)
        try:
            self.get(item)
        except NotFound:
            return False
        return True

    def find(self, query: Any = None, **kwargs: Any) -> list[Dixel]:
        """Rows whose tags (or meta) equal every query value; "" and "*" match anything."""
        refuse_unknown(self._where(), "find", kwargs)
        wanted = query.tags if isinstance(query, Dixel) else dict(query or {})
        wanted = {k: str(v) for k, v in wanted.items() if v not in ("", "*", None)}
        return [d for d in self._rows_or_empty() if all(str(d.tag(k, "")) == v for k, v in wanted.items())]

    # --- writing ----------------------------------------------------------------------------------------
    def _open_writer(self, first: Mapping[str, str]) -> None:
        path = self._path()
        if is_xlsx(path):
            raise ConfigError(f"{self._where()}: items are written as CSV text; name a .csv file, not an Excel one")
        existing: list[str] | None = None
        needs_newline = False
        if path.exists() and path.stat().st_size > 0:
            with path.open("rb") as handle:
                header = next(read_records(BoundedLines(handle, self.max_field_size), self._where()), (1, []))
                existing = [h.strip() for h in header[1]]
            with path.open("rb") as raw:
                raw.seek(-1, os.SEEK_END)
                needs_newline = raw.read(1) not in (b"\n", b"\r")
        self._columns = existing or list(self.fieldnames or first.keys())
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out = path.open("a", encoding="utf-8", newline="")
        if needs_newline:
            self._out.write("\r\n")
        self._writer = csvcells.DictWriter(self._out, fieldnames=self._columns, extrasaction="ignore")
        if existing is None:
            self._writer.writeheader()

    def put(self, item: Dixel, force_write: bool = False, **kwargs: Any) -> str | None:
        """Append the item as a row (header written once); ``force_write`` flushes to disk now. Returns its key."""
        refuse_unknown(self._where(), "put", kwargs)
        row = dixel_to_row(item)
        with self._lock:
            try:
                if self._writer is None:
                    self._open_writer(row)
                assert self._columns is not None
                if self.fieldnames is None:
                    extra = [c for c in row if c not in self._columns and row[c] != ""]
                    if extra and not self.strict:
                        logger.debug("%s: columns not in the header are left out: %s", self._where(), extra[:5])
                    elif extra:
                        raise ValidationError(
                            f"{self._where()}: item {item.summary()['id']} has columns not in the header: "
                            f"{', '.join(extra[:5])}; set 'fieldnames' to choose the columns to write, or "
                            "strict: false to leave them out")
                self._writer.writerow(row)
                if force_write:
                    self._flush_locked(sync=True)
            except OSError as exc:
                raise EndpointUnavailable(f"{self._where()}: cannot write: {exc.strerror}") from exc
        return item.sid() or None

    def _flush_locked(self, sync: bool = False) -> None:
        if self._out is not None:
            self._out.flush()
            if sync:
                os.fsync(self._out.fileno())

    def flush(self) -> None:
        """Write buffered rows to the file."""
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        """Flush and close the output file (a later put reopens it in append mode)."""
        with self._lock:
            if self._out is not None:
                self._out.close()
            self._out = self._writer = self._columns = None

    def __enter__(self) -> CsvFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
