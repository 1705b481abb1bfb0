"""Embedded endpoints that need no server: an in-memory Dixel store and a SQLite registry.

``SqliteRegistry`` is the FileIndexer's default registry when no Redis is configured (stdlib sqlite3, WAL).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from attrs import define, field

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel
from diana_core.errors import NotFound, ValidationError
from diana_core.ports import Endpoint, is_query, refuse_unknown


def _key(item: Any) -> str:
    return item.oid() if isinstance(item, Dixel) else str(item)


@define(kw_only=True)
class MemoryEndpoint(Endpoint):
    """Dixels kept in a dict keyed by Orthanc id: an honest in-memory implementation of the port."""

    name: str = "MemoryEndpoint"
    _items: dict[str, Dixel] = field(factory=dict, init=False, repr=False, eq=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False, eq=False)

    def check(self) -> bool:
        return True

    def put(self, item: Dixel, **kwargs: Any) -> str:
        refuse_unknown(self.name, "put", kwargs)
        key = item.oid()
        with self._lock:
            self._items[key] = item
        return key

    def get(self, item: Any, **kwargs: Any) -> Dixel:
        refuse_unknown(self.name, "get", kwargs)
        try:
            return self._items[_key(item)]
        except KeyError:
            raise NotFound(f"{self.name}: no item {_key(item)}") from None

    def find(self, query: Any, level: DicomLevel | str = DicomLevel.STUDIES, **kwargs: Any) -> list[Dixel]:
        refuse_unknown(self.name, "find", kwargs)
        wanted = query.tags if isinstance(query, Dixel) else dict(query or {})
        lvl = DicomLevel.from_label(level)
        return [
            d for d in list(self._items.values())
            if d.level == lvl and all(str(d.tag(k)) == str(v) for k, v in wanted.items() if v not in ("", "*"))
        ]

    def exists(self, item: Any, **kwargs: Any) -> bool:
        refuse_unknown(self.name, "exists", kwargs)
        if is_query(item):
            return self.exists_query(item, **kwargs)
        return _key(item) in self._items

    def update(self, item: Any, data: Mapping[str, Any], **kwargs: Any) -> str:
        dixel = self.get(item)
        dixel.tags.update(data)
        return _key(item)

    def delete(self, item: Any, **kwargs: Any) -> bool:
        refuse_unknown(self.name, "delete", kwargs)
        with self._lock:
            return self._items.pop(_key(item), None) is not None

    def __len__(self) -> int:
        return len(self._items)


@define(kw_only=True)
class SqliteRegistry(Endpoint):
    """Collections of items (e.g. file paths per accession number) in one SQLite file; WAL, batched writes.

    Fields:
        path: SQLite file of the registry (:memory: for a throw-away one).
    """

    name: str = "SqliteRegistry"
    path: str = ":memory:"
    _conn: sqlite3.Connection | None = field(default=None, init=False, repr=False, eq=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False, eq=False)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                # accession numbers -> paths: owner-only from the first byte (SQLite gives its -wal/-shm the
                # database file's mode), whatever the umask; an existing file keeps the mode its owner chose
                with contextlib.suppress(FileExistsError):
                    os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS members (collection TEXT NOT NULL, member TEXT NOT NULL,"
                " PRIMARY KEY (collection, member)) WITHOUT ROWID"
            )
            self._conn = conn
        return self._conn

    def check(self) -> bool:
        try:
            with self._lock:
                self._db().execute("SELECT 1")
            return True
        except sqlite3.Error:
            return False

    @staticmethod
    def _collection_of(item: Dixel, prefix: str, collection_key: str) -> str:
        value = item.tag(collection_key)
        if value in (None, ""):
            raise ValidationError(f"item {item.summary()['id']} has no {collection_key} to collect it by")
        return f"{prefix}{value}"

    def add_to_collection(self, item: Dixel, prefix: str = "", collection_key: str = "AccessionNumber",
                          item_key: str = "FilePath", path: str | None = None) -> str:
        """Add ``item.meta[item_key]`` (or its file name, joined to path) to the item's collection."""
        return self.add_many([(item, prefix, collection_key, item_key, path)])[0]

    def add_many(self, entries: Iterable[tuple[Dixel, str, str, str, str | None]]) -> list[str]:
        """Register many items in one transaction; returns their collection names."""
        rows, names = [], []
        for item, prefix, collection_key, item_key, path in entries:
            name = self._collection_of(item, prefix, collection_key)
            member = item.meta.get(item_key) or item.fn
            if member is None:
                raise ValidationError(f"item {item.summary()['id']} has no {item_key}")
            if path and not str(member).startswith(str(path)):
                member = str(Path(path) / member)
            rows.append((name, str(member)))
            names.append(name)
        with self._lock:
            db = self._db()
            db.execute("BEGIN")
            db.executemany("INSERT OR IGNORE INTO members VALUES (?, ?)", rows)
            db.execute("COMMIT")
        return names

    def add_members(self, members: Iterable[tuple[str, str]], prefix: str = "") -> int:
        """Register (collection, member) pairs (collection without the prefix) in one transaction; returns new ones."""
        rows = []
        for collection, member in members:
            for value in (collection, member):
                if not value or value.__class__ is not str:
                    raise ValidationError(f"registry {self.name!r}: add_members takes non-empty str collection names "
                                          f"and members, got {'an empty' if value == '' else 'a'} {type(value).__name__}")
            rows.append((prefix + collection, member))
        with self._lock:
            db = self._db()
            before = db.total_changes
            db.execute("BEGIN")
            db.executemany("INSERT OR IGNORE INTO members VALUES (?, ?)", rows)
            db.execute("COMMIT")
            return db.total_changes - before

    def collections(self, prefix: str = "") -> Iterator[str]:
        with self._lock:
            rows = self._db().execute(
                "SELECT DISTINCT collection FROM members WHERE substr(collection, 1, ?) = ? ORDER BY collection",
                (len(prefix), prefix),
            ).fetchall()
        for (name,) in rows:
            yield name[len(prefix):]

    def collected_items(self, collection: str, prefix: str = "") -> list[str]:
        with self._lock:
            rows = self._db().execute(
                "SELECT member FROM members WHERE collection = ? ORDER BY member", (f"{prefix}{collection}",)
            ).fetchall()
        return [m for (m,) in rows]

    def total(self, prefix: str = "") -> int:
        """Number of members over all collections under a prefix."""
        with self._lock:
            (count,) = self._db().execute(
                "SELECT count(*) FROM members WHERE substr(collection, 1, ?) = ?", (len(prefix), prefix)
            ).fetchone()
        return int(count)

    def delete(self, item: Any, prefix: str = "", **kwargs: Any) -> bool:
        with self._lock:
            cur = self._db().execute("DELETE FROM members WHERE collection = ?", (f"{prefix}{item}",))
        return cur.rowcount > 0

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
