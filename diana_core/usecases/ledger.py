"""The routing ledger: which rule delivered which item to which destination, one row each (SQLite, fsync'd).

Each (rule, destination) pair keeps its own exactly-once bookkeeping: before a delivery the router asks ``done``,
after it succeeds it calls ``record``. An event repeated after a crash (a source replays what was not acknowledged)
then reaches only the destinations that had not taken it yet. The rows double as the audit trail of the routes:
which rule sent what where, and when. Item keys are UIDs or file names: keep the file with the data.

Rows are kept ``keep_seconds`` (``diana watch --ledger-keep``, 7 days by default) and then pruned, so a daemon that
runs for months keeps a file bounded by its recent traffic, not by every event it ever routed. A row is only needed
while its event may be announced again (unacknowledged at a crash, or waiting for a retry): minutes, not days.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from diana_core.dixel import Dixel

_SCHEMA = """CREATE TABLE IF NOT EXISTS delivered (
    rule TEXT NOT NULL, dest TEXT NOT NULL, item TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (rule, dest, item))"""

_INDEX = "CREATE INDEX IF NOT EXISTS delivered_at ON delivered (at)"  # pruning by age reads only the old rows

DEFAULT_KEEP_SECONDS = 7 * 24 * 3600.0
PRUNE_EVERY = 60.0
"""Seconds between two prunes (each one deletes the rows that aged out meanwhile: a short, indexed DELETE)."""

_UID_OF_LEVEL = {4: "SOPInstanceUID", 3: "SeriesInstanceUID", 2: "StudyInstanceUID"}


def item_key(data: Any) -> str:
    """What makes a delivery the same delivery: an instance's SOP UID; a study/series UID with its instance count
    (a study that grew is routed again); a file's path, size and mtime (a rewritten file is new)."""
    if isinstance(data, Dixel):
        level = int(data.level)
        uid = data.tag(_UID_OF_LEVEL.get(level, "SOPInstanceUID"))
        if uid:
            count = data.meta.get("Instances")
            return f"{level}:{uid}" + (f":{count}" if count is not None and level < 4 else "")
        return f"{level}:{data.meta.get('ID') or data.fn or data.summary()['id']}"
    if isinstance(data, str | os.PathLike):
        path = os.path.abspath(os.fspath(data))
        try:
            st = os.stat(path)
        except OSError:
            return f"file:{path}"
        return f"file:{path}:{st.st_size}:{st.st_mtime_ns}"
    return f"{type(data).__name__}:{data!r}"


def _iso(epoch: float) -> str:
    """UTC ISO time with milliseconds: one fixed format, so the text order of ``at`` is the time order."""
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=epoch)).isoformat(timespec="milliseconds")


class DeliveryLedger:
    """Delivered (rule, dest, item) rows in a SQLite file; thread-safe, each row durable when ``record`` returns.
    Rows older than ``keep_seconds`` are pruned as new ones are recorded (None: kept for ever)."""

    def __init__(self, path: str | os.PathLike[str], keep_seconds: float | None = DEFAULT_KEEP_SECONDS,
                 clock: Any = time.time) -> None:
        self.path = os.fspath(path)
        self.keep_seconds = keep_seconds
        self.pruned = 0  # rows pruned by this instance
        self._clock = clock
        self._next_prune = 0.0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None  # opened on first use: a refused routes file leaves no file

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # item keys name studies: owner-only
            os.close(fd)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA journal_size_limit=4194304")  # the WAL is truncated back to 4 MiB after a burst
            db.execute(_SCHEMA)
            db.execute(_INDEX)
            self._db = db
        return self._db

    def done(self, rule: str, dest: str, item: str) -> bool:
        with self._lock:
            row = self._conn().execute("SELECT 1 FROM delivered WHERE rule=? AND dest=? AND item=?",
                                       (rule, dest, item)).fetchone()
        return row is not None

    def record(self, rule: str, dest: str, item: str) -> None:
        now = self._clock()
        at = _iso(now)
        with self._lock:
            self._conn().execute("INSERT OR IGNORE INTO delivered VALUES (?, ?, ?, ?)", (rule, dest, item, at))
            if self.keep_seconds is not None and now >= self._next_prune:
                self._next_prune = now + PRUNE_EVERY
                self._prune(now)

    def prune(self) -> int:
        """Delete the rows older than ``keep_seconds`` now; returns how many went."""
        with self._lock:
            return self._prune(self._clock())

    def _prune(self, now: float) -> int:
        if self.keep_seconds is None:
            return 0
        cursor = self._conn().execute("DELETE FROM delivered WHERE at < ?", (_iso(now - self.keep_seconds),))
        self.pruned += max(cursor.rowcount, 0)
        return max(cursor.rowcount, 0)

    def count(self) -> int:
        """Rows held now."""
        with self._lock:
            return int(self._conn().execute("SELECT count(*) FROM delivered").fetchone()[0])

    def rows(self) -> list[tuple[str, str, str, str]]:
        """Every (rule, dest, item, time) row, oldest first."""
        with self._lock:
            return list(self._conn().execute("SELECT rule, dest, item, at FROM delivered ORDER BY at"))

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
