"""Ports of the hexagon: what every backend implements and what every use case relies on.

``Endpoint`` (CRUD over Dixels), ``Observable`` (a source of ``Event``), ``Serializable`` (config round trips),
and small capability protocols (``Anonymizer``, ``Pseudonymizing``, ``Sender``, ``Registry``, ``Retriever``, ``BulkPutter``) that use
cases type against instead of a concrete backend.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Protocol, TypeGuard, runtime_checkable

import attrs
from attrs import define, field

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel
from diana_core.errors import ConfigError, DianaError, NotFound, NotSupportedError
from diana_core.keywords import check_keywords, strict
from diana_core.serialize import config_fields, converter, structure_config

Progress = Callable[[int, int | None], None]
"""Progress callback: (done so far, total if known)."""


class EventType(enum.StrEnum):
    """What an Observable can report."""

    INSTANCE_ADDED = "instance_added"
    SERIES_ADDED = "series_added"
    STUDY_ADDED = "study_added"
    PATIENT_ADDED = "patient_added"
    SERIES_STABLE = "series_stable"
    STUDY_STABLE = "study_stable"
    STABLE_STUDY = "study_stable"  # alias: the name the original used
    FILE_ADDED = "file_added"
    ITEM_ADDED = "item_added"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def from_label(cls, label: EventType | str) -> EventType:
        if isinstance(label, cls):
            return label
        key = str(label).strip()
        try:
            return cls[key.upper()]
        except KeyError:
            return cls(key.lower())


@define(frozen=True)
class Event:
    """One observed change: its type, the name of the source that saw it, and the item (Dixel, id or path)."""

    event_type: EventType
    source_name: str
    data: Any = None
    event_id: Any = None
    timestamp: float = field(factory=time.time)


EndpointBuilder = Callable[[str, Mapping[str, Any], str], Any]
"""Builds an endpoint from (ctype, config mapping, service name); the services layer installs the real one."""


class Serializable:
    """Round trip through plain dicts with the one cattrs converter; ``ctype`` names the class.

    Classes are found by ctype through the plugins (entry points) or, for classes defined in a script,
    ``Serializable.register(cls)`` (the original DIANA's ``Factory.create`` use).
    """

    _registered: ClassVar[dict[str, type]] = {}
    _builder: ClassVar[EndpointBuilder | None] = None
    Factory: ClassVar[Any] = None  # the original's ``Serializable.Factory.create(**desc)``; set by the services layer

    def asdict(self, include_secrets: bool = False, full: bool = False) -> dict[str, Any]:
        """Plain dict of ``ctype`` plus the config fields that differ from their defaults (as the original
        dumped them; ``full=True`` keeps every field); fields marked ``secret_field()`` are left out."""
        data = converter.unstructure(self)
        cls: Any = type(self)
        if attrs.has(cls):
            for f in attrs.fields(cls):
                if not include_secrets and f.metadata.get("secret"):
                    data.pop(f.name, None)
                elif not full and f.init and _at_default(self, f):
                    data.pop(f.alias or f.name, None)
        if not include_secrets:
            data = _without_secrets(data)  # nested service descriptions (e.g. a proxy's) carry passwords too
        return {"ctype": type(self).__name__, **data}

    @classmethod
    def fromdict(cls, data: Mapping[str, Any]) -> Any:
        """Rebuild an instance; a ``ctype`` key selects the class (plugins, then ``register``-ed classes)."""
        data = dict(data)
        ctype = data.pop("ctype", cls.__name__)
        service = data.get("name", ctype)
        if Serializable._builder is not None:
            return Serializable._builder(ctype, data, service)
        klass = cls if ctype == cls.__name__ else Serializable.registered(ctype)
        if klass is None:
            raise ConfigError(f"unknown ctype {ctype!r} in service {service!r}")
        return structure_config(klass, data, service, ctype)

    @classmethod
    def register(cls, klass: type | None = None, *, ctype: str | None = None) -> Any:
        """Make a class buildable by ctype from service descriptions: ``Serializable.register(C)``, a decorator, or
        (the original's classmethod) ``C.register()`` on the subclass itself."""
        if klass is None and cls is not Serializable:
            klass = cls

        def add(k: type) -> type:
            name = ctype or k.__name__
            known = Serializable._registered.get(name)
            if known is not None and known is not k:
                raise ConfigError(f"ctype {name!r} is already registered by {known.__module__}.{known.__qualname__}")
            Serializable._registered[name] = k
            return k

        return add(klass) if klass is not None else add

    @staticmethod
    def registered(ctype: str) -> type | None:
        """The class registered in Python under ``ctype``, if any."""
        return Serializable._registered.get(ctype)

    @staticmethod
    def use_builder(builder: EndpointBuilder | None) -> None:
        """Install how ``fromdict`` builds endpoints (the services layer: env expansion, plugin lookup)."""
        Serializable._builder = builder


def _at_default(obj: Any, f: Any) -> bool:
    default = f.default
    if default is attrs.NOTHING:
        return False
    if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
        if default.takes_self:
            return False
        default = default.factory()
    try:
        return bool(getattr(obj, f.name) == default)
    except Exception:  # noqa: BLE001 - an odd __eq__ only means "keep the field"
        return False


@define(frozen=True)
class BulkResult:
    """Outcome of a bulk operation: counts, and the failed items with the reason (no PHI)."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


@define(kw_only=True)
class Endpoint(Serializable):
    """Generic CRUD endpoint over Dixels. Unsupported operations raise ``NotSupportedError``.

    Fields:
        name: The service's name (its key in the service file); used in every message about it.
    """

    name: str = "Endpoint"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # every backend's put refuses keywords it does not name (one line listing those it does): structural, so
        # no plugin can swallow a caller's option in **kwargs
        super().__init_subclass__(**kwargs)
        put = cls.__dict__.get("put")
        if callable(put):
            _own_class_cell(getattr(put, "__wrapped__", put), cls)
            cls.put = strict(put, where=_put_where)  # type: ignore[method-assign]

    def _unsupported(self, method: str) -> NotSupportedError:
        return NotSupportedError(f"{type(self).__name__} {self.name!r} does not support {method}()")

    def check(self) -> bool:
        """True when the endpoint is reachable and usable; never raises for a plain outage."""
        raise self._unsupported("check")

    def get(self, item: Any, **kwargs: Any) -> Dixel:
        """Retrieve an item (Dixel or id); raises NotFound or EndpointUnavailable."""
        raise self._unsupported("get")

    def put(self, item: Dixel, **kwargs: Any) -> Any:
        """Add or replace an item; returns its id in this endpoint."""
        raise self._unsupported("put")

    def find(self, query: Any, **kwargs: Any) -> Iterable[Any]:
        """Items matching a query (mapping of tag -> value, or a Dixel); may be a lazy iterable."""
        raise self._unsupported("find")

    def exists(self, item: Any, **kwargs: Any) -> bool:
        """True if present, False only when the endpoint says it is absent; outages raise. A query mapping
        (``{"AccessionNumber": ...}``) asks whether ``find`` matches anything."""
        if is_query(item):
            return self.exists_query(item, **kwargs)
        try:
            self.get(item, **kwargs)
        except NotFound:
            return False
        return True

    def exists_query(self, query: Mapping[str, Any], **kwargs: Any) -> bool:
        """True if ``find(query)`` yields at least one item (stops at the first)."""
        found = self.find(query, **{k: v for k, v in kwargs.items() if v is not None})
        return next(iter(found), None) is not None

    def update(self, item: Any, data: Mapping[str, Any], **kwargs: Any) -> Any:
        """Update an item's data."""
        raise self._unsupported("update")

    def delete(self, item: Any, **kwargs: Any) -> bool:
        """Remove an item; True if something was removed."""
        raise self._unsupported("delete")

    def handle(self, item: Any, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call a method of this endpoint by name (used by routes and the CLI)."""
        func = getattr(self, method, None)
        if func is None or method.startswith("_") or not callable(func):
            raise self._unsupported(method)
        return func(item, *args, **kwargs)

    def put_many(self, items: Iterable[Dixel], workers: int = 1, progress: Progress | None = None) -> BulkResult:
        """Put many items; failures are collected, not raised. Backends override for concurrency."""
        done, failed = 0, []
        for item in items:
            try:
                self.put(item)
                done += 1
            except DianaError as exc:
                failed.append((item.summary()["id"], str(exc)))
            if progress:
                progress(done + len(failed), None)
        return BulkResult(done=done, failed=failed)


def _own_class_cell(func: Any, cls: type) -> None:
    """Point a method's zero-argument ``super()`` cell at ``cls``: attrs rebuilds slotted classes and fixes the cells
    of the methods it sees, not of one wrapped inside ``strict``."""
    code = getattr(func, "__code__", None)
    if code is None or "__class__" not in code.co_freevars or not func.__closure__:
        return
    func.__closure__[code.co_freevars.index("__class__")].cell_contents = cls


def _put_where(args: tuple[Any, ...]) -> str:
    endpoint = args[0] if args else None
    return f"{type(endpoint).__name__} {getattr(endpoint, 'name', '?')!r}: put()"


class Observable:
    """A source of events. ``changes()`` returns what happened since the last call (non-blocking)."""

    polling_interval: float = 1.0

    def changes(self, **kwargs: Any) -> Iterable[Event]:
        """Events since the last call; push-based sources start their watcher on the first call."""
        raise NotSupportedError(f"{type(self).__name__} does not produce events")

    def poll_events(self) -> Iterator[Event]:
        """Iterate over currently available events."""
        yield from self.changes()

    def stop(self) -> None:
        """Release watchers/threads; safe to call twice."""


@runtime_checkable
class Acknowledging(Protocol):
    def ack(self, event: Event) -> None:
        """The Watcher handled (or dead-lettered) ``event``: a restarted source resumes after what was acked."""


@runtime_checkable
class Resuming(Protocol):
    def resume_summary(self) -> str:
        """Start the source and say in a few words what it catches up with (events it announces again because a
        previous run received them but never acknowledged them); "" when it starts at "now"."""

    def resumes(self) -> bool:
        """True when events not acknowledged are announced again after a restart (a mark or journal persists)."""


@runtime_checkable
class FromNow(Protocol):
    def start_from_now(self) -> None:
        """Before the first ``changes()``: skip what arrived while no daemon ran (``diana watch --from-now``)."""


@runtime_checkable
class InstanceCounter(Protocol):
    def count_instances(self, item: Any, level: DicomLevel = ...) -> int:
        """Number of instances the endpoint holds under ``item`` (0 when absent); outages raise."""


@runtime_checkable
class Hosted(Protocol):
    def server_url(self) -> str:
        """Base URL of the server that holds this endpoint's data (for a proxied remote: its proxy's)."""


@runtime_checkable
class Recovering(Protocol):
    def recover(self) -> int:
        """Remove what a killed writer left behind (partial files of dead processes); returns how many."""


@runtime_checkable
class Anonymizer(Protocol):
    def anonymize(self, item: Any, level: DicomLevel = ..., replacement_map: Mapping | None = None, **kwargs: Any) -> Any:
        """Pseudonymize an item; returns the new item (or its id)."""


@runtime_checkable
class Pseudonymizing(Protocol):
    """An endpoint that stores items pseudonymized by the one local de-identification engine (DcmDir)."""

    @property
    def pseudonymizes_on_write(self) -> bool:
        """True when every plain ``put`` is pseudonymized too (e.g. a DcmDir with ``anonymizing: true``)."""

    def put_pseudonymized(self, item: Dixel, pseudonymizer: Any = None, **kwargs: Any) -> Any:
        """Store an instance or an archive pseudonymized with ``pseudonymizer`` (key, profile, report)."""


@runtime_checkable
class Sender(Protocol):
    def send(self, item: Any, dest: str, **kwargs: Any) -> Any:
        """Send an item to a named peer or modality known to this endpoint."""


@runtime_checkable
class Retriever(Protocol):
    def find(self, query: Any, level: DicomLevel = ..., retrieve: bool = False, **kwargs: Any) -> list[Any]:
        """Query a remote and optionally retrieve what matched."""


@runtime_checkable
class StudyRetriever(Protocol):
    """A source that must first fetch a study within reach (C-MOVE to a proxy, C-GET, WADO to a cache)."""

    def retrieve_study(self, study: Dixel) -> Dixel:
        """Bring one study (an answer of ``find``) where ``get`` can read it; returns the item ``get`` reads."""

    def release_study(self, study: Dixel) -> None:
        """Drop the local copy ``retrieve_study`` made (never the remote original, never a delivered copy)."""


@runtime_checkable
class Diagnosing(Protocol):
    """An endpoint that can say why it is unavailable (``diana check``)."""

    def diagnose(self) -> tuple[bool, str]:
        """(available, detail): detail says why not (connection refused, DNS, TLS, folder missing, not writable...)
        or what to configure; "" when all is well. Never raises for an outage."""


@runtime_checkable
class Registry(Protocol):
    def add_to_collection(self, item: Dixel, prefix: str = "", collection_key: str = "AccessionNumber",
                          item_key: str = "FilePath", path: str | None = None) -> Any:
        """Register an item in the collection named by its ``collection_key`` tag."""

    def collections(self, prefix: str = "") -> Iterable[str]:
        """Names of the collections under a prefix."""

    def collected_items(self, collection: str, prefix: str = "") -> Iterable[str]:
        """Members of one collection."""


@runtime_checkable
class BulkRegistry(Protocol):
    def add_many(self, entries: Iterable[tuple[Dixel, str, str, str, str | None]]) -> list[str]:
        """Register many (item, prefix, collection_key, item_key, path) entries in one round trip."""


@runtime_checkable
class MemberRegistry(Protocol):
    def add_members(self, members: Iterable[tuple[str, str]], prefix: str = "") -> int:
        """Register (collection, member) pairs the caller already extracted (collection without the prefix), in
        bulk and without a Dixel per entry; returns how many were new."""


@runtime_checkable
class CountingRegistry(Protocol):
    def total(self, prefix: str = "") -> int:
        """Number of members of every collection under a prefix, without listing them."""


@runtime_checkable
class HeaderReader(Protocol):
    def read_header(self, path: str | os.PathLike[str]) -> Any:
        """The header of one file (no pixels) as a dataset-like object; InvalidDicom when it is not DICOM."""


@runtime_checkable
class KeysReader(Protocol):
    def read_keys(self, path: str | os.PathLike[str], keys: Iterable[str]) -> Any:
        """One file's header parsed only as far as ``keys`` (keywords or tags) need: routing conditions' cheap read."""


@runtime_checkable
class Waking(Protocol):
    def set_waker(self, wake: Callable[[], None]) -> None:
        """Call ``wake()`` (from any thread) when new events are ready, so a watcher need not wait for its poll."""


@runtime_checkable
class FileUploader(Protocol):
    def put_files(self, paths: Iterable[str], workers: int = ..., progress: Progress | None = None) -> BulkResult:
        """Upload files by path; the backend reads (in its workers) and judges them, failures name the file."""


@runtime_checkable
class BulkPutter(Protocol):
    def put_many(self, items: Iterable[Dixel], workers: int = ..., progress: Progress | None = None) -> BulkResult:
        """Put many items with bounded concurrency."""


PORT_KEYWORDS = frozenset({"level", "view", "dest"})
"""Keywords use cases pass to any endpoint's get/exists/find/delete: accepted everywhere, ignored where meaningless."""


def refuse_unknown(where: str, method: str, kwargs: Mapping[str, Any], known: Iterable[str] = ()) -> None:
    """ConfigError naming the keyword arguments ``method`` does not take and the ones it does (strict interfaces):
    ``keywords.check_keywords`` with the keywords every port method takes (``PORT_KEYWORDS``)."""
    check_keywords(f"{where}: {method}()", kwargs, set(known) | PORT_KEYWORDS)


def is_query(item: Any) -> TypeGuard[Mapping[str, Any]]:
    """True for a query mapping (tag -> value), as opposed to an id or a Dixel."""
    return isinstance(item, Mapping) and not isinstance(item, Dixel)


SECRET_KEYS = frozenset({"password", "secret", "token", "key", "pseudonym_key"})


def _without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_secrets(v) for k, v in value.items() if str(k).lower() not in SECRET_KEYS}
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def secret_field(default: Any = None) -> Any:
    """An attrs field for a credential: hidden from repr and left out of ``asdict()``."""
    return field(default=default, repr=False, metadata={"secret": True})


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def tls_verify(value: Any) -> bool | str:
    """A ``verify`` setting as requests takes it: a bool (or its text: "false", "no"...) or an existing CA file/folder.

    Any other string is a ConfigError: it would otherwise turn into ``True`` and the CA would be silently ignored.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        path = os.path.expanduser(text)
        if os.path.isfile(path) or os.path.isdir(path):
            return os.path.abspath(path)
        raise ConfigError(f"verify: {text!r} is neither true/false nor an existing CA bundle file; give the path of "
                          "the PEM file holding your CA certificate (or true to use the system CAs)")
    raise ConfigError(f"verify: expected true, false or a CA bundle path, not a {type(value).__name__}")


def verify_field() -> Any:
    """An attrs field for TLS verification (default on): a bool, or the path of a CA bundle for a private CA."""
    return field(default=True, converter=tls_verify)


__all__ = [
    "Anonymizer", "BulkPutter", "BulkRegistry", "BulkResult", "CountingRegistry", "Diagnosing", "Endpoint", "Event",
    "EventType", "FileUploader", "FromNow", "HeaderReader", "KeysReader", "MemberRegistry", "Observable",
    "PORT_KEYWORDS", "Progress", "Registry", "Resuming", "Retriever", "Sender", "Serializable", "StudyRetriever",
    "Waking", "config_fields", "refuse_unknown", "secret_field", "tls_verify", "verify_field",
]
