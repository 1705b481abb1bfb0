"""Entry point of the example plugin: one module, the three hooks, heavy imports deferred."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from diana_core import ConfigError, hookimpl


@hookimpl
def diana_endpoints(register: Callable[[str, type], None]) -> None:
    """Register the JsonDir ctype."""
    from diana_jsondir.endpoint import JsonDir

    register("JsonDir", JsonDir)


def json_log(item: Any, source: Any = None, dest: Any = None, log: str | None = None, **kwargs: Any) -> str:
    """Route handler: append the item's non-PHI summary to a JSONL file; returns the file's path.

    Diana calls every handler as ``handler(item, source=..., dest=..., **route options)``; ``dest`` may be None
    (a route without a destination). The file is the ``log`` route option, else ``routed.jsonl`` in a JsonDir dest.
    A missing destination is a permanent error (ConfigError): it goes straight to the dead letter, never retried.
    """
    from diana_jsondir.endpoint import JsonDir

    if log is None and isinstance(dest, JsonDir):
        log = str(Path(dest.path) / "routed.jsonl")
    if log is None:
        raise ConfigError("json_log needs a JsonDir destination or the route option 'log: FILE'")
    summary = item.summary() if hasattr(item, "summary") else {"id": str(item)}
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(summary) + "\n")
    return log


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
        click.echo(sum(1 for _ in Path(folder).glob("*.json")))
