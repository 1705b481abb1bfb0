"""Log output for people and for daemons: rich on a terminal, otherwise one plain or JSON line per record.

``plain``: ``2026-11-25T23:01:02+00:00 INFO diana_core.usecases.watcher handled 3 events`` (journald/grep friendly,
never wrapped or padded); ``json``: ``{"time": ..., "level": ..., "logger": ..., "message": ...}`` per line.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from diana_core.serialize import iso_time

FORMATS = ("auto", "rich", "plain", "json")


def stderr_is_tty() -> bool:
    """True when a person watches stderr (progress bars and rich rendering are for them only)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class PlainFormatter(logging.Formatter):
    """ISO time (UTC offset), level, logger, message on one line; a traceback's lines follow indented."""

    def format(self, record: logging.LogRecord) -> str:
        when = iso_time(record.created)
        line = f"{when} {record.levelname} {record.name} {record.getMessage()}".replace("\n", " | ")
        if record.exc_info:
            line += "\n" + "\n".join("  " + x for x in self.formatException(record.exc_info).splitlines())
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (+ exception text)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": iso_time(record.created, timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(verbose: int, log_format: str = "auto") -> str:
    """Install one stderr handler for the root logger; returns the format chosen (auto: rich on a TTY, else plain)."""
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    chosen = ("rich" if stderr_is_tty() else "plain") if log_format == "auto" else log_format
    handler: logging.Handler
    if chosen == "rich":
        from rich.console import Console
        from rich.logging import RichHandler

        handler = RichHandler(console=Console(stderr=True), show_path=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter() if chosen == "json" else PlainFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    return chosen
