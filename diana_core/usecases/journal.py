"""Job journal: one SQLite file in the job folder recording each worklist item's state.

A rerun skips what is ``done`` without touching the source; an item left ``sending`` by a crash (kill -9,
PACS outage) is cleaned at the destination and redone, so nothing is lost and nothing is duplicated.
The job folder is private (mode 0700): it holds accession numbers, never image data.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from attrs import define, field

PENDING, RESOLVED, SENDING, DONE, FAILED = "pending", "resolved", "sending", "done", "failed"


@define
class JournalEntry:
    key: str
    status: str
    attempts: int = 0
    source_oid: str | None = None
    dest_oid: str | None = None
    instances: int = 0
    error: str | None = None


@define
class Journal:
    """Thread-safe journal of a collection job (WAL SQLite, one row per worklist key)."""

    path: Path
    _conn: sqlite3.Connection = field(init=False, repr=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        self.path = Path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path.parent, 0o700)
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS items (key TEXT PRIMARY KEY, status TEXT NOT NULL, attempts INTEGER DEFAULT 0,"
            " source_oid TEXT, dest_oid TEXT, instances INTEGER DEFAULT 0, error TEXT, updated REAL)"
        )

    def get(self, key: str) -> JournalEntry | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT key, status, attempts, source_oid, dest_oid, instances, error FROM items WHERE key = ?", (key,)
            ).fetchone()
        return JournalEntry(*row) if row else None

    def mark(self, key: str, status: str, **values: Any) -> None:
        """Record a state change (and optional source_oid/dest_oid/instances/error) durably."""
        cols = {"status": status, "updated": time.time(), **values}
        if status == SENDING:
            cols["attempts"] = (self.get(key) or JournalEntry(key, PENDING)).attempts + 1
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        updates = ", ".join(f"{c} = excluded.{c}" for c in cols)
        with self._lock:
            self._conn.execute(
                f"INSERT INTO items (key, {names}) VALUES (?, {marks}) ON CONFLICT(key) DO UPDATE SET {updates}",
                (key, *cols.values()),
            )

    def entries(self, status: str | None = None) -> Iterator[JournalEntry]:
        query = "SELECT key, status, attempts, source_oid, dest_oid, instances, error FROM items"
        args: tuple[Any, ...] = ()
        if status:
            query += " WHERE status = ?"
            args = (status,)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY key", args).fetchall()
        for row in rows:
            yield JournalEntry(*row)

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT status, count(*) FROM items GROUP BY status").fetchall()
        return dict(rows)

    def close(self) -> None:
        self._conn.close()
