"""Output formats for listing commands (``find``, ``get``): json (default), jsonl, csv and a table.

Each record is flattened to one level (``meta.X`` / tag keywords / ``extracted.X``) for jsonl/csv/table so it
can be piped into other tools; nested values (sequences, dose-report content) are written as JSON text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import click

from diana_core import csvcells
from diana_core.serialize import converter

FORMATS = ("json", "jsonl", "csv", "table")


def flat(record: Mapping[str, Any]) -> dict[str, Any]:
    """``{"level", "meta": {...}, "tags": {...}, "extracted": {...}}`` -> one flat row."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key == "tags" and isinstance(value, Mapping):
            row.update({k: _cell(v) for k, v in value.items()})
        elif key in ("meta", "extracted") and isinstance(value, Mapping):
            row.update({f"{key}.{k}": _cell(v) for k, v in value.items()})
        else:
            row[key] = _cell(value)
    return row


def _cell(value: Any) -> Any:
    value = converter.unstructure(value)
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, separators=(",", ":"))
    return value


def emit_records(records: Iterable[Mapping[str, Any]], fmt: str, json_output: bool = False) -> None:
    """Write records to stdout in ``fmt`` (``--json`` forces json)."""
    rows = list(records)
    if json_output or fmt == "json":
        click.echo(json.dumps(converter.unstructure(rows), indent=None if json_output else 2, default=str))
        return
    flats = [flat(r) for r in rows]
    columns: list[str] = []
    for row in flats:
        columns += [c for c in row if c not in columns]
    if fmt == "jsonl":
        for row in flats:
            click.echo(json.dumps(row, default=str))
    elif fmt == "csv":
        writer = csvcells.DictWriter(sys.stdout, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(flats)
        sys.stdout.flush()
    elif fmt == "table":
        from rich.console import Console
        from rich.table import Table

        table = Table(*columns)
        for row in flats:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        Console(width=max(120, 16 * len(columns))).print(table)
    else:
        raise click.BadParameter(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", param_hint="--format")
