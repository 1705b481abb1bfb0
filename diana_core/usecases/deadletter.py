"""Dead-letter file of the Watcher: one JSON object per line for each event a handler gave up on.

A record holds the event (its item serialized with ``diana_core.serialize``, file bytes and pixels left out: the
handler reads them again from the source), the trigger and handler names, the route (service names) when known,
the number of tries and the last error. The file holds item identifiers: keep it with the data, not in logs.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from attrs import define

from diana_core import redaction
from diana_core.dixel import Dixel
from diana_core.ports import Event, EventType
from diana_core.serialize import converter, iso_time

_write_lock = threading.Lock()


def item_id(data: Any) -> str:
    """A non-PHI identifier for logs: a Dixel's Orthanc id, a path's keyed hash (its base name with --show-ids),
    else the value's type."""
    if isinstance(data, Dixel):
        ident = str(data.summary()["id"])
        return redaction.shown(ident) if data.fn and ident == data.fn else ident
    if isinstance(data, (str, os.PathLike)):
        return redaction.shown(data)
    return type(data).__name__


def item_paths(data: Any) -> list[str]:
    """The file names an event carries, to scrub from error text shown at INFO+."""
    if isinstance(data, Dixel):
        return [data.fn] if data.fn else []
    return [os.fspath(data)] if isinstance(data, (str, os.PathLike)) else []


def _strip(dixel: Dixel) -> Dixel:
    return Dixel(meta=dict(dixel.meta), tags=dict(dixel.tags), level=dixel.level)


def encode_data(data: Any) -> dict[str, Any]:
    """Event data as JSON-ready data: {"dixel": ...} or {"value": ...}."""
    if isinstance(data, Dixel):
        return {"dixel": converter.unstructure(_strip(data))}
    if isinstance(data, os.PathLike):
        return {"value": os.fspath(data)}
    return {"value": converter.unstructure(data)}


def decode_data(data: dict[str, Any]) -> Any:
    if "dixel" in data:
        return converter.structure(data["dixel"], Dixel)
    return data.get("value")


@define
class DeadLetterFile:
    """Append, read and rewrite dead-letter records (JSON lines)."""

    path: str | os.PathLike[str]

    def append(self, event: Event, trigger: Any, attempts: int, error: str) -> dict[str, Any]:
        """Write one record for an event a trigger gave up on."""
        record = {
            "time": iso_time(),
            "trigger": trigger.name,
            "handler": trigger.handler,
            "route": trigger.route,
            "attempts": attempts,
            "error": error,
            "event": {
                "event_type": str(event.event_type),
                "source_name": event.source_name,
                "event_id": event.event_id if isinstance(event.event_id, (str, int, float, type(None))) else str(
                    event.event_id),
                "data": encode_data(event.data),
            },
        }
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(record, default=str)
        with _write_lock:
            # the record holds item tags (PHI): owner-only permissions, like the collector's key file
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
        return record

    def records(self) -> Iterator[dict[str, Any]]:
        """Records in file order; a missing file has none."""
        path = Path(self.path)
        if not path.exists():
            return
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)

    @staticmethod
    def event_of(record: dict[str, Any]) -> Event:
        """The Event a record describes, with its item rebuilt."""
        ev = record["event"]
        return Event(event_type=EventType.from_label(ev["event_type"]), source_name=ev["source_name"],
                     data=decode_data(ev.get("data") or {}), event_id=ev.get("event_id"))

    def rewrite(self, records: list[dict[str, Any]]) -> None:
        """Replace the file's content atomically with these records (an empty list removes the file)."""
        path = Path(self.path)
        with _write_lock:
            if not records:
                path.unlink(missing_ok=True)
                return
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                for record in records:
                    fh.write(json.dumps(record, default=str) + "\n")
            os.replace(tmp, path)
