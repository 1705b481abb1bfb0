"""The embedded ``JobState``: the job folder's SQLite journal, CSV key file and ``job.json`` facts (all private).

This is today's behaviour behind the port: one coordinator process, its threads claiming keys in memory. The
Celery plugin provides a Redis-backed state that several machines share.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from diana_core import csvcells
from diana_core.usecases.jobfiles import KeyFile, private_open
from diana_core.usecases.journal import Journal, JournalEntry

INFO_FILE = "job.json"


class EmbeddedJobState:
    """JobState in a job folder (mode 0700): journal.sqlite, key.csv (0600, fsynced rows), job.json."""

    def __init__(self, folder: str | os.PathLike[str], key: str = "AccessionNumber", job: str | None = None) -> None:
        self.folder = Path(folder)
        self.job = job or self.folder.name
        self.key = key
        self.journal = Journal(self.folder / "journal.sqlite")
        self.keys = KeyFile(self.folder / "key.csv", key)
        self.scratch = self.folder / "tmp"
        self._claims: set[str] = set()
        self._lock = threading.Lock()

    def get(self, key: str) -> JournalEntry | None:
        return self.journal.get(key)

    def mark(self, key: str, status: str, **values: Any) -> None:
        self.journal.mark(key, status, **values)

    def entries(self, status: str | None = None) -> Iterator[JournalEntry]:
        return self.journal.entries(status)

    def counts(self) -> dict[str, int]:
        return self.journal.counts()

    def add_key_row(self, row: Mapping[str, str]) -> None:
        self.keys.add(row)

    def key_rows(self) -> list[dict[str, str]]:
        if not self.keys.path.exists():
            return []
        with self.keys.path.open(encoding="utf-8", newline="") as fh:
            return list(csvcells.read_dicts(fh))

    def forget_key_rows(self, keys: Iterable[str]) -> None:
        """Nothing to forget: this store's key rows are the job's key file."""

    def purge(self, compact: bool = False) -> int:
        """Remove the folder's scratch (study archives a killed run left); the journal and key file stay."""
        if self.scratch.exists():
            shutil.rmtree(self.scratch)
            return 1
        return 0

    @contextlib.contextmanager
    def claim(self, key: str) -> Iterator[bool]:
        with self._lock:
            got = key not in self._claims
            self._claims.add(key)
        try:
            yield got
        finally:
            if got:
                with self._lock:
                    self._claims.discard(key)

    def set_info(self, **values: Any) -> None:
        info = {**self.info(), **values}
        with private_open(self.folder / INFO_FILE, "w") as fh:
            json.dump(info, fh, indent=1, default=str)

    def info(self) -> dict[str, Any]:
        path = self.folder / INFO_FILE
        try:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def done_times(self) -> list[tuple[float, str]]:
        import sqlite3

        with contextlib.closing(sqlite3.connect(f"file:{self.journal.path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT updated FROM items WHERE status = 'done'").fetchall()
        return [(float(t or 0), "local") for (t,) in rows]

    def close(self) -> None:
        self.journal.close()
