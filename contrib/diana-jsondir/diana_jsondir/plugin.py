"""Entry point of the example plugin: one module, the three hooks, heavy imports deferred."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from diana_core import hookimpl


@hookimpl
def diana_endpoints(register: Callable[[str, type], None]) -> None:
    """Register the JsonDir ctype."""
    from diana_jsondir.endpoint import JsonDir

    register("JsonDir", JsonDir)


def json_log(item: Any, dest: str = "routed.jsonl", **kwargs: Any) -> None:
    """Route handler: append the item's non-PHI summary to a JSONL file."""
    summary = item.summary() if hasattr(item, "summary") else {"id": str(item)}
    with open(dest, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(summary) + "\n")


@hookimpl
def diana_handlers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register the json_log handler."""
    register("json_log", json_log)


@hookimpl
def diana_cli(cli: Any) -> None:
    """Add ``diana jsondir-count FOLDER``."""
    import click

    @cli.command("jsondir-count")
    @click.argument("folder", type=click.Path(exists=True, file_okay=False))
    def count(folder: str) -> None:
        """Count the Dixels stored in a JsonDir FOLDER."""
        from pathlib import Path

        click.echo(sum(1 for _ in Path(folder).glob("*.json")))
