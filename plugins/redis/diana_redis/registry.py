"""The file-indexer registry on Redis (DESIGN §7): one set per collection, key ``prefix + AccessionNumber``.

Same signatures as ``diana_core.embedded.SqliteRegistry`` so the FileIndexer can use either. Bulk registration is
pipelined (one round trip per batch, members grouped per collection); names of the collections under a prefix are
kept in an index set ``diana:collections:{prefix}``, so listing and counting never use KEYS (SCAN is the fallback
for registries written without the index, e.g. by the original DIANA).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from diana_core import Dixel
from diana_core.errors import ValidationError

INDEX_PREFIX = "diana:collections:"

Entry = tuple[Dixel, str, str, str, "str | None"]
_STR_ONLY = {str}


def prefix_for_path(basepath: str | Path) -> str:
    """Registry prefix of a base folder: md5(path)[:4] + "-" (the original DIANA layout)."""
    return hashlib.md5(str(basepath).encode("utf-8")).hexdigest()[:4] + "-"


def collection_of(item: Dixel, prefix: str, collection_key: str) -> str:
    """``prefix + item.tag(collection_key)``; ValidationError naming the item when the tag is missing."""
    value = item.tag(collection_key)
    if value in (None, ""):
        raise ValidationError(f"item {item.summary()['id']} has no {collection_key} to collect it by")
    return f"{prefix}{value}"


def member_of(item: Dixel, item_key: str, path: str | None) -> str:
    """``item.meta[item_key]`` (or its file name), joined to ``path`` unless already under it."""
    member = item.meta.get(item_key) or item.fn
    if member is None:
        raise ValidationError(f"item {item.summary()['id']} has no {item_key}")
    if path and not str(member).startswith(str(path)):
        member = str(Path(path) / member)
    return str(member)


def _check_strings(collection: Any, members: list[Any], where: str) -> None:
    """ValidationError unless the collection name and every member are non-empty str (names no value: no PHI)."""
    if collection and collection.__class__ is str and all(members) and set(map(type, members)) == _STR_ONLY:
        return
    bad = next((v for v in (collection, *members) if not v or v.__class__ is not str), collection)
    raise ValidationError(f"Redis {where!r}: add_members takes non-empty str collection names and members, "
                          f"got {'an empty' if bad == '' else 'a'} {type(bad).__name__}")


def _chunks(entries: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of ``size`` entries (the last one shorter), cut by islice rather than a Python loop per entry."""
    it, size = iter(entries), max(1, size)
    while batch := list(islice(it, size)):
        yield batch


class RegistryMixin:
    """Registry operations for the Redis endpoint (needs ``_client()``, ``_errors()``, ``batch_size``, ``name``)."""

    prefix_for_path = staticmethod(prefix_for_path)
    batch_size: int
    name: str

    def _client(self) -> Any: ...  # provided by the endpoint

    def _errors(self, what: str) -> Any: ...  # provided by the endpoint

    @staticmethod
    def _index_key(prefix: str) -> str:
        return f"{INDEX_PREFIX}{prefix}"

    def add_to_collection(self, item: Dixel, prefix: str = "", collection_key: str = "AccessionNumber",
                          item_key: str = "FilePath", path: str | None = None) -> str:
        """Add ``item.meta[item_key]`` (or its file name, joined to path) to the item's collection set."""
        return self.add_many([(item, prefix, collection_key, item_key, path)])[0]

    def add_many(self, entries: Iterable[Entry]) -> list[str]:
        """Register many items, one pipelined round trip per ``batch_size`` entries; returns collection names."""
        names: list[str] = []
        append = names.append
        for batch in _chunks(entries, self.batch_size):
            grouped: dict[str, list[str]] = {}
            indexed: dict[str, set[str]] = {}
            for item, prefix, collection_key, item_key, path in batch:
                # the hot loop of indexing: read the dicts directly, fall back to the checked helpers
                meta = item.meta
                try:
                    value = item.tags[collection_key]
                    name = prefix + value if value else collection_of(item, prefix, collection_key)
                except (KeyError, TypeError):
                    name = collection_of(item, prefix, collection_key)
                member = meta.get(item_key) or meta.get("FileName")
                if member.__class__ is not str or (path and not member.startswith(path)):
                    member = member_of(item, item_key, path)
                members = grouped.get(name)
                if members is None:
                    grouped[name] = members = []
                    indexed.setdefault(prefix, set()).add(name[len(prefix):])
                members.append(member)
                append(name)
            self._write(grouped, indexed)
        return names

    def add_members(self, members: Iterable[tuple[str, str]], prefix: str = "") -> int:
        """Add (collection, member) pairs, collections named without ``prefix``: the bulk path for a caller that
        already holds both strings (no Dixel read per entry); one round trip per ``batch_size``; returns new ones."""
        added = 0
        for batch in _chunks(members, self.batch_size):
            by_collection: dict[str, list[str]] = {}
            for collection, member in batch:
                by_collection.setdefault(collection, []).append(member)
            grouped: dict[str, list[str]] = {}
            for collection, paths in by_collection.items():
                _check_strings(collection, paths, self.name)
                grouped[prefix + collection] = paths
            added += self._write(grouped, {prefix: set(by_collection)})
        return added

    def add_paths(self, collection: str, paths: Iterable[str], prefix: str = "") -> int:
        """Add plain paths to one collection (pipelined in batches); returns how many were new."""
        added = 0
        for batch in _chunks(paths, self.batch_size):
            added += self._write({f"{prefix}{collection}": [str(p) for p in batch]}, {prefix: {collection}})
        return added

    def _write(self, grouped: dict[str, list[str]], indexed: dict[str, set[str]]) -> int:
        with self._errors(f"register {sum(map(len, grouped.values()))} items"):
            pipe = self._client().pipeline(transaction=False)
            for name, members in grouped.items():
                pipe.sadd(name, *members)
            for prefix, collections in indexed.items():
                pipe.sadd(self._index_key(prefix), *collections)
            results = pipe.execute()
        return sum(results[: len(grouped)])

    def collections(self, prefix: str = "") -> Iterator[str]:
        """Names (without the prefix) of the collections under ``prefix``: SSCAN of the index, else SCAN."""
        with self._errors("collections"):
            client = self._client()
            index = self._index_key(prefix)
            if client.exists(index):
                yield from client.sscan_iter(index, count=self.batch_size)
                return
            pattern = _glob_escape(prefix) + "*"
            for key in client.scan_iter(match=pattern, count=self.batch_size, _type="SET"):
                if not key.startswith("diana:"):
                    yield key[len(prefix):]

    def collected_items(self, collection: str, prefix: str = "") -> list[str]:
        """Members of one collection, sorted (NotFound is not raised: an unknown collection is empty)."""
        with self._errors(f"collected_items {prefix}{collection}"):
            return sorted(self._client().smembers(f"{prefix}{collection}"))

    def total(self, prefix: str = "") -> int:
        """Number of members over all collections under ``prefix`` (SCARD pipelined per batch, never KEYS)."""
        count = 0
        for batch in _chunks(self.collections(prefix), self.batch_size):
            with self._errors("total"):
                pipe = self._client().pipeline(transaction=False)
                for name in batch:
                    pipe.scard(f"{prefix}{name}")
                count += sum(pipe.execute())
        return count


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
