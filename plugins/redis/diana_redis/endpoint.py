"""Redis endpoint: Dixels stored as JSON strings by Orthanc id, plus the file-indexer registry (see registry.py).

One redis-py ``ConnectionPool`` per endpoint; every redis-py failure is translated into Diana's typed errors here,
naming the endpoint and the key (never the password).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from attrs import define, field

from diana_core import Dixel, Endpoint
from diana_core.errors import AuthenticationError, DianaError, EndpointUnavailable, NotFound, ValidationError
from diana_core.ports import Serializable, is_query, refuse_unknown, secret_field
from diana_core.serialize import dixel_from_json, to_json
from diana_redis.registry import RegistryMixin

logger = logging.getLogger(__name__)

ITEM_INDEX = "diana:items"
"""Set of the keys of the stored items, so ``find`` never scans the whole keyspace."""


def _json_default(value: Any) -> Any:
    """Dates and times as ISO text (as the original's SmartJSONEncoder did); anything else is refused."""
    from datetime import date, time, timedelta

    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    raise TypeError(type(value).__name__)


def _value_json(item: Any, name: str) -> str:
    """JSON of a non-Dixel value: a Serializable's ``asdict(full=True)``, else the value itself."""
    data = item.asdict(full=True) if isinstance(item, Serializable) else item
    try:
        return json.dumps(data, default=_json_default, sort_keys=isinstance(data, dict))
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"Redis {name!r}: cannot store a {type(item).__name__} as JSON") from exc


@define(kw_only=True)
class Redis(RegistryMixin, Endpoint):
    """Redis as an item store (JSON Dixels keyed by ``oid()``) and as a registry of collections (sets).

    Fields:
        host: Redis host name.
        port: Redis port.
        db: Database number.
        password: Password (a secret: from ${ENV}).
        username: ACL user name (Redis 6+), with password.
        socket_timeout: Seconds per command before Redis counts as unavailable.
        max_connections: Connection pool size (match the parallelism).
        batch_size: Members written per pipeline round trip in bulk registration.
    """

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
    _redis: Any = field(default=None, init=False, repr=False, eq=False)  # one thread-safe client on the pool

    # --- connection and error translation ------------------------------------------------------------
    def _client(self) -> Any:
        if self._redis is not None:
            return self._redis
        import redis

        if self._pool is None:
            self._pool = redis.ConnectionPool(
                host=self.host, port=self.port, db=self.db, password=self.password, username=self.username,
                socket_timeout=self.socket_timeout, socket_connect_timeout=self.socket_timeout,
                max_connections=self.max_connections, decode_responses=True,
            )
        self._redis = redis.Redis(connection_pool=self._pool)  # building one costs ~0.1 ms: once, not per call
        return self._redis

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
            from diana_core.connectivity import why_unreachable

            why = why_unreachable(exc, self.host)
            raise EndpointUnavailable(f"{where} is unavailable ({what}): {why}", reason=why) from exc

    def close(self) -> None:
        """Disconnect the pool (a later call reconnects)."""
        if self._pool is not None:
            self._pool.disconnect()
            self._pool = None
        self._redis = None

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

    def diagnose(self) -> tuple[bool, str]:
        """(available, why not): PING; connection refused, DNS, timeout or refused credentials."""
        try:
            with self._errors("ping"):
                self._client().ping()
        except AuthenticationError:
            return False, "credentials refused"
        except EndpointUnavailable as exc:
            return False, exc.reason or str(exc)
        return True, ""

    # --- items ----------------------------------------------------------------------------------------
    @staticmethod
    def _key(item: Any, key: str | None = None) -> str:
        if key is not None:
            return str(key)
        return item.oid() if isinstance(item, Dixel) else str(item)

    def put(self, item: Any, key: str | None = None, **kwargs: Any) -> str:
        """Store the item as JSON under ``key``; returns the key. A Dixel is keyed by its Orthanc id; any other
        value (a string, a number, a mapping, a Serializable) by the md5 of its JSON, as the original did."""
        refuse_unknown(f"Redis {self.name!r}", "put", kwargs)
        if isinstance(item, Dixel):
            k, text = self._key(item, key), to_json(item)
        else:
            text = _value_json(item, self.name)
            k = key if key is not None else hashlib.md5(text.encode("utf-8")).hexdigest()
        with self._errors(f"put {k}"):
            pipe = self._client().pipeline(transaction=True)
            pipe.set(k, text)
            pipe.sadd(ITEM_INDEX, k)
            pipe.execute()
        return k

    def get(self, item: Any, key: str | None = None, **kwargs: Any) -> Any:
        """What is stored under the item's key: a Dixel, a rebuilt Serializable (``ctype``), or the plain value;
        NotFound when absent."""
        refuse_unknown(f"Redis {self.name!r}", "get", kwargs)
        k = self._key(item, key)
        with self._errors(f"get {k}"):
            text = self._client().get(k)
        if text is None:
            raise NotFound(f"Redis {self.name!r}: no item {k}")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValidationError(f"Redis {self.name!r}: value at {k} is not JSON") from exc
        if isinstance(data, dict) and "ctype" in data:
            from diana_core.services import Factory

            return Factory.create(data)
        if isinstance(data, dict) and {"level", "tags"} <= set(data):
            try:
                return dixel_from_json(text)
            except (ValueError, TypeError, KeyError) as exc:
                raise ValidationError(f"Redis {self.name!r}: value at {k} is not a serialized Dixel") from exc
        return data

    def exists(self, item: Any, key: str | None = None, **kwargs: Any) -> bool:
        """True if the key is present (items or collections); outages raise. A query mapping asks ``find``."""
        refuse_unknown(f"Redis {self.name!r}", "exists", kwargs)
        if is_query(item):
            return self.exists_query(item, level=kwargs.get("level"))
        k = self._key(item, key)
        with self._errors(f"exists {k}"):
            return bool(self._client().exists(k))

    def update(self, item: Any, data: Any, key: str | None = None, **kwargs: Any) -> str:
        """Merge ``data`` into the stored Dixel's tags (``_``-prefixed keys go to meta); for any other stored
        value, or when ``data`` is not a mapping, replace the value under the key. Returns the key."""
        k = self._key(item, key)
        dixel = self.get(k)
        if not isinstance(dixel, Dixel) or not isinstance(data, Mapping):
            return self.put(data, key=k)
        for name, value in data.items():
            if name.startswith("_"):
                dixel.meta[name[1:]] = value
            else:
                dixel.tags[name] = value
        return self.put(dixel, key=k)

    def delete(self, item: Any, prefix: str = "", key: str | None = None, **kwargs: Any) -> bool:
        """Remove an item (Dixel or key) or a collection (``prefix`` + name); True if something went."""
        refuse_unknown(f"Redis {self.name!r}", "delete", kwargs)
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
        refuse_unknown(f"Redis {self.name!r}", "find", kwargs)
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

    def clear(self, confirm: bool = False) -> None:
        """Empty this Redis database (FLUSHDB), as the original's ``clear()``; refuses without ``confirm=True``."""
        if not confirm:
            raise ValidationError(f"Redis {self.name!r}: clear() empties database {self.db}; call clear(confirm=True)")
        with self._errors("clear"):
            self._client().flushdb()

    # --- the original's set helpers, thin methods over the registry -----------------------------------
    def sput(self, key: str, *members: Any, prefix: str = "") -> int:
        """Add members to the set ``prefix + key``; returns how many were new."""
        return self.add_paths(key, [str(m) for m in members], prefix=prefix)

    def skeys(self, prefix: str = "") -> list[str]:
        """Names (without the prefix) of the sets under ``prefix``."""
        return sorted(self.collections(prefix))

    def sget(self, key: str, prefix: str = "") -> list[str]:
        """Members of the set ``prefix + key`` (empty when there is no such set)."""
        return self.collected_items(key, prefix)

    @staticmethod
    def _match(texts: list[str | None], wanted: Mapping[str, Any], level: Any) -> Iterator[Dixel]:
        from diana_core import DicomLevel

        lvl = DicomLevel.from_label(level) if level is not None else None
        for text in texts:
            if text is None or '"tags"' not in text:
                continue  # plain values stored with put() are not items to match
            try:
                dixel = dixel_from_json(text)
            except (ValueError, TypeError, KeyError):
                continue
            if lvl is not None and dixel.level != lvl:
                continue
            if all(str(dixel.tag(k)) == str(v) for k, v in wanted.items()):
                yield dixel
