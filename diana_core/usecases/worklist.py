"""Worklists of a collection job: the studies to collect, from a CSV file, a text file of ids, a project folder,
an endpoint's search, or ids and Dixels given directly. Bad input is a ConfigError naming the file, line or row."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from diana_core.dixel import Dixel
from diana_core.errors import ConfigError
from diana_core.services import build_endpoint


def read_worklist(data: Any, key: str = "AccessionNumber", query: Mapping[str, Any] | None = None,
                  project: str | None = None) -> list[Dixel]:
    """Worklist from a CSV path (column ``key``, or the first column), a plain text file of ids (one per line),
    a project folder holding ``{project}.studies.txt`` (the original's layout) or ``{project}.csv``, an endpoint
    searched with ``query`` (e.g. a Montage report search: {"q": "pneumonia", ...}), or ids/Dixels."""
    if isinstance(data, (str, os.PathLike)) and Path(data).is_dir():
        data = _project_worklist(Path(data), project)
    if isinstance(data, (str, os.PathLike)) and str(data).lower().endswith(".txt") and os.path.isfile(data):
        data = text_worklist(Path(data))
    if isinstance(data, (str, os.PathLike)):
        if not os.path.isfile(data):
            raise ConfigError(f"worklist {os.fspath(data)!r} is not a file (nor a service name)")
        # the key column is required: a header without it is refused naming the columns found and the closest one
        data = build_endpoint("CsvFile", {"fp": str(data), "key": key, "required": [key]}, service_name=str(data))
    searchable = hasattr(data, "find") and not isinstance(data, (list, tuple))
    items = list(data.find(dict(query or {})) if searchable else data)
    out = []
    for n, item in enumerate(items, start=1):
        if isinstance(item, Dixel):
            if not item.tag(key):
                found = ", ".join(repr(k) for k in list(item.tags)[:20])
                raise ConfigError(f"worklist item {n} has no {key} (its columns: {found or 'none'}); "
                                  "choose the key column with --key-column NAME")
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(Dixel(tags=dict(item)))
        else:
            out.append(Dixel(tags={key: str(item)}))
    return out


def _project_worklist(folder: Path, project: str | None) -> Path:
    names = [f"{project}.studies.txt", f"{project}.studies.csv", f"{project}.csv"] if project else []
    for name in names:
        if (folder / name).is_file():
            return folder / name
    wanted = " or ".join(names) or "a worklist file (give the project name)"
    raise ConfigError(f"project folder {str(folder)!r} has no {wanted}")


def text_worklist(path: Path, max_line: int = 4096) -> list[str]:
    """One id per line; blank lines and # comments skipped (a UTF-8 BOM too). Read line by line with a capped
    readline: binary data, another encoding or an endless line is a ConfigError naming the file, line and fix."""
    where = f"worklist {path.name!r}"
    ids: list[str] = []
    try:
        with path.open("rb") as handle:
            for n, raw in enumerate(iter(lambda: handle.readline(max_line + 1), b""), start=1):
                if len(raw) > max_line and not raw.endswith(b"\n"):
                    raise ConfigError(f"{where}: line {n} is longer than {max_line} bytes; a worklist holds one id "
                                      "per line: check that this is the right file")
                if b"\x00" in raw:
                    raise ConfigError(f"{where}: line {n} holds NUL bytes: this is a binary file, not a list of ids")
                try:
                    line = raw.decode("utf-8-sig" if n == 1 else "utf-8").strip()
                except UnicodeDecodeError:
                    raise ConfigError(f"{where}: line {n} is not UTF-8; save the file as UTF-8 text") from None
                if line and not line.startswith("#"):
                    ids.append(line)
    except OSError as exc:
        raise ConfigError(f"cannot read worklist {str(path)!r}: {exc.strerror}") from exc
    return ids
