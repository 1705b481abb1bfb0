"""Redis endpoint: Dixels stored as JSON strings by Orthanc id, plus the file-indexer registry (see registry.py).

One redis-py ``ConnectionPool`` per endpoint; every redis-py failure is translated into Diana's typed errors here,
naming the endpoint and the key (never the password).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from attrs import define, field

from diana_core import Dixel, Endpoint
from diana_core.errors import AuthenticationError, DianaError, EndpointUnavailable, NotFound, ValidationError
from diana_core.ports import secret_field
from diana_core.serialize import dixel_from_json, to_json
from diana_redis.registry import RegistryMixin

logger = logging.getLogger(__name__)

ITEM_INDEX = "diana:items"
"""Set of the keys of the stored items, so ``find`` never scans the whole keyspace."""


@define(kw_only=True)
class Redis(RegistryMixin, Endpoint):
    """Redis as an item store (JSON Dixels keyed by ``oid()``) and as a registry of collections (sets)."""

    name: str = "Redis"
    host: str = "localhost"
    port: int = 6379
    db: int = 0
    password: str | None = secret_field()
    username: str | None = None
    socket_timeout: float = 10.0
    max_connections: int = 16
    batch_size: int = 5000
    _pool: Any = field(default=None, init=False, repr=False, eq=False)

    # --- connection and error translation ------------------------------------------------------------
    def _client(self) -> Any:
        import redis

        if self._pool is None:
            self._pool = redis.ConnectionPool(
                host=self.host, port=self.port, db=self.db, password=self.password, username=self.username,
                socket_timeout=self.socket_timeout, socket_connect_timeout=self.socket_timeout,
                max_connections=self.max_connections, decode_responses=True,
            )
        return redis.Redis(connection_pool=self._pool)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Translate redis-py exceptions into typed Diana errors naming this endpoint and ``what``."""
        import redis.exceptions as rx

        where = f"Redis {self.name!r} at {self.host}:{self.port}"
        try:
            yield
        except (rx.AuthenticationError, rx.NoPermissionError) as exc:
            raise AuthenticationError(f"{where} refused our credentials ({what}): {type(exc).__name__}") from None
        except rx.ResponseError as exc:
            text = str(exc)
            if text.startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
                raise AuthenticationError(f"{where} refused our credentials ({what})") from None
            raise DianaError(f"{where}: {what} failed: {text}") from exc
        except (rx.ConnectionError, rx.TimeoutError, OSError) as exc:
            raise EndpointUnavailable(f"{where} is unavailable ({what}): {type(exc).__name__}") from exc

    def close(self) -> None:
        """Disconnect the pool (a later call reconnects)."""
        if self._pool is not None:
            self._pool.disconnect()
            self._pool = None

    def check(self) -> bool:
        """PING the server: False when it cannot be reached; AuthenticationError when it refuses us."""
        try:
            with self._errors("ping"):
                return bool(self._client().ping())
        except AuthenticationError:
            raise
        except EndpointUnavailable as exc:
            logger.info("%s", exc)
            return False

    # --- items ----------------------------------------------------------------------------------------
    @staticmethod
    def _key(item: Any, key: str | None = None) -> str:
        if key is not None:
            return str(key)
        return item.oid() if isinstance(item, Dixel) else str(item)

    def put(self, item: Dixel, key: str | None = None, **kwargs: Any) -> str:
        """Store the item as JSON under ``key`` (default: its Orthanc id); returns the key."""
        if not isinstance(item, Dixel):
            raise ValidationError(f"Redis {self.name!r}: put() takes a Dixel, not {type(item).__name__}")
        k = self._key(item, key)
        with self._errors(f"put {k}"):
            pipe = self._client().pipeline(transaction=True)
            pipe.set(k, to_json(item))
            pipe.sadd(ITEM_INDEX, k)
            pipe.execute()
        return k

    def get(self, item: Any, key: str | None = None, **kwargs: Any) -> Dixel:
        """The Dixel stored under the item's key; NotFound when absent."""
        k = self._key(item, key)
        with self._errors(f"get {k}"):
            text = self._client().get(k)
        if text is None:
            raise NotFound(f"Redis {self.name!r}: no item {k}")
        try:
            return dixel_from_json(text)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValidationError(f"Redis {self.name!r}: value at {k} is not a serialized Dixel") from exc

    def exists(self, item: Any, key: str | None = None, **kwargs: Any) -> bool:
        """True if the key is present (items or collections); outages raise."""
        k = self._key(item, key)
        with self._errors(f"exists {k}"):
            return bool(self._client().exists(k))

    def update(self, item: Any, data: Mapping[str, Any], key: str | None = None, **kwargs: Any) -> str:
        """Merge ``data`` into the stored item's tags (``_``-prefixed keys go to meta); returns the key."""
        k = self._key(item, key)
        dixel = self.get(k)
        for name, value in data.items():
            if name.startswith("_"):
                dixel.meta[name[1:]] = value
            else:
                dixel.tags[name] = value
        return self.put(dixel, key=k)

    def delete(self, item: Any, prefix: str = "", key: str | None = None, **kwargs: Any) -> bool:
        """Remove an item (Dixel or key) or a collection (``prefix`` + name); True if something went."""
        k = self._key(item, key) if isinstance(item, Dixel) or key else f"{prefix}{item}"
        with self._errors(f"delete {k}"):
            pipe = self._client().pipeline(transaction=True)
            pipe.delete(k)
            pipe.srem(ITEM_INDEX, k)
            pipe.srem(self._index_key(prefix), k[len(prefix):])
            removed = pipe.execute()[0]
        return bool(removed)

    def find(self, query: Any = None, **kwargs: Any) -> list[Dixel]:
        """Stored Dixels whose tags (or meta) equal every query value ("" and "*" match anything)."""
        wanted = query.tags if isinstance(query, Dixel) else dict(query or {})
        wanted = {k: v for k, v in wanted.items() if v not in ("", "*", None)}
        level = kwargs.get("level")
        found: list[Dixel] = []
        with self._errors("find"):
            client = self._client()
            batch: list[str] = []
            for k in client.sscan_iter(ITEM_INDEX, count=self.batch_size):
                batch.append(k)
                if len(batch) >= self.batch_size:
                    found.extend(self._match(client.mget(batch), wanted, level))
                    batch = []
            if batch:
                found.extend(self._match(client.mget(batch), wanted, level))
        return found

    @staticmethod
    def _match(texts: list[str | None], wanted: Mapping[str, Any], level: Any) -> Iterator[Dixel]:
        from diana_core import DicomLevel

        lvl = DicomLevel.from_label(level) if level is not None else None
        for text in texts:
            if text is None:
                continue
            dixel = dixel_from_json(text)
            if lvl is not None and dixel.level != lvl:
                continue
            if all(str(dixel.tag(k)) == str(v) for k, v in wanted.items()):
                yield dixel
