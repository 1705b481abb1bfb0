"""Route handlers for the Watcher, and ``mk_route`` to build a Trigger from service descriptions.

Every handler has the shape ``handler(item, source=None, dest=None, **options)``: ``item`` is an event's data (a
Dixel, an id or a path), ``source``/``dest`` are endpoints typed only by the ports they need (Endpoint, Anonymizer,
Sender, Retriever). Plugins add handlers through the ``diana_handlers`` hook; ``mk_route`` finds them by name.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from typing import Any

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel, DixelView
from diana_core.errors import ConfigError, NotFound, NotSupportedError
from diana_core.keywords import FORWARDS, check_keywords, handler_keywords, strict
from diana_core.plugins import get_plugin_manager
from diana_core.ports import Anonymizer, EventType, Pseudonymizing, Sender
from diana_core.processes import pid_alive
from diana_core.pseudonym import Pseudonymizer, load_key
from diana_core.services import Services, build_endpoint, load_services, resolve_endpoint
from diana_core.usecases.deadletter import item_id
from diana_core.usecases.relay import deliver_pseudonymized, pseudonymize_in
from diana_core.usecases.route_aliases import alias_event, resolve_alias
from diana_core.usecases.trigger import Trigger

logger = logging.getLogger(__name__)

HANDLERS = ("put_item", "send_item", "upload_item", "pull_and_save_item", "index_item", "query_and_index", "say")

# event types each handler wants, best first; mk_route takes the first one the source says it produces
HANDLER_EVENTS: dict[str, tuple[EventType, ...]] = {
    "put_item": (EventType.INSTANCE_ADDED, EventType.FILE_ADDED, EventType.STUDY_STABLE, EventType.ITEM_ADDED),
    "send_item": (EventType.STUDY_STABLE, EventType.SERIES_STABLE, EventType.STUDY_ADDED, EventType.INSTANCE_ADDED),
    "upload_item": (EventType.FILE_ADDED, EventType.INSTANCE_ADDED),
    "pull_and_save_item": (EventType.STUDY_ADDED, EventType.SERIES_ADDED),
    "index_item": (EventType.STUDY_STABLE, EventType.STUDY_ADDED, EventType.INSTANCE_ADDED, EventType.FILE_ADDED),
    "query_and_index": (EventType.ITEM_ADDED, EventType.STUDY_ADDED),
}


def _level(item: Any, level: DicomLevel | str | int | None, default: DicomLevel) -> DicomLevel:
    if level is not None:
        return DicomLevel.from_label(level)
    return item.level if isinstance(item, Dixel) else default


def _as_dixel(item: Any, level: DicomLevel) -> Dixel:
    """An id or path as a Dixel: Orthanc-looking ids go to meta["ID"], anything else is a file name."""
    if isinstance(item, Dixel):
        return item
    text = str(item)
    if len(text) == 44 and text.count("-") == 4:
        return Dixel(meta={"ID": text}, level=level)
    return Dixel(meta={"FileName": text}, level=level)


def _fetch(source: Any, item: Any, level: DicomLevel, view: DixelView) -> Dixel:
    """The item with the given view, from the item itself when it already has it, else from the source."""
    if isinstance(item, Dixel):
        if DixelView.FILE in view and item.file is not None:
            return item
        if view == DixelView.TAGS and item.tags:
            return item
    return source.get(item, level=level, view=view)


@contextlib.contextmanager
def file_of(source: Any, item: Any, level: DicomLevel) -> Iterator[Dixel]:
    """The item with its tags and file: bytes for an instance; above instances the archive is streamed by the
    source into a temporary file (``meta["FileName"]``), removed when the block ends."""
    if isinstance(item, Dixel) and item.file is not None:
        yield item
        return
    if level >= DicomLevel.INSTANCES:
        yield source.get(item, level=level, view=DixelView.TAGS_FILE)
        return
    fd, tmp = tempfile.mkstemp(prefix=f"{os.getpid()}-route-", suffix=".zip", dir=route_tmpdir())
    os.close(fd)
    try:
        dixel = source.get(item, level=level, view=DixelView.TAGS_FILE, dest=tmp)
        if dixel.file is None:
            dixel.meta["FileName"] = tmp
        yield dixel
    finally:
        os.unlink(tmp)


@functools.lru_cache(maxsize=8)
def _cached_plan(key: str | None, profile: str | None, unkeyed: bool) -> Pseudonymizer:
    return Pseudonymizer(key=key, profile=profile, unkeyed=unkeyed)


def plan(pseudonymizer: Pseudonymizer | None = None, profile: str | None = None, unkeyed: bool = False) -> Pseudonymizer:
    """The pseudonymization plan of a route: the one given, else one per (key, profile, unkeyed), kept so its
    identity cache serves every event; refuses (ConfigError) without a key unless ``unkeyed``."""
    pz = pseudonymizer or _cached_plan(load_key(), profile, unkeyed)
    pz.require_key()
    return pz


def route_tmpdir() -> str:
    """The owner-only (0700) folder where handlers stream study archives (identified data) while they work."""
    path = os.path.join(tempfile.gettempdir(), f"diana-routes-{os.getuid()}")
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def purge_route_leftovers() -> int:
    """Remove what killed handlers left in ``route_tmpdir()`` (names start with their pid); returns how many.
    The files of live processes (another daemon at work) are kept."""
    import shutil

    removed = 0
    with os.scandir(route_tmpdir()) as entries:
        for entry in entries:
            pid = entry.name.partition("-")[0]
            if not pid.isdigit() or pid_alive(int(pid)):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
            removed += 1
    return removed


def anonymize_in(endpoint: Any, item: Any, level: DicomLevel, pseudonymizer: Pseudonymizer | None = None) -> Any:
    """Pseudonymize ``item`` inside ``endpoint`` with the one local engine (its Anonymizer port, which relays
    locally, or a download-pseudonymize-upload relay); the new item."""
    pz = plan(pseudonymizer)
    if not isinstance(endpoint, Anonymizer):
        return pseudonymize_in(endpoint, item, level, pz)
    tags = _fetch(endpoint, item, level, DixelView.TAGS).tags
    replacement = pz.replacement_map(tags, level)
    return endpoint.anonymize(item, level=level, replacement_map=replacement, pseudonymizer=pz)


@strict(forwards="put")
def put_item(item: Any, source: Any = None, dest: Any = None, level: Any = None, **kwargs: Any) -> Any:
    """Get the item's file from source (unless the event carried it) and put it into dest; returns the dest id."""
    lvl = _level(item, level, DicomLevel.INSTANCES)
    if source is None:
        return dest.put(item, **kwargs)
    with file_of(source, _as_dixel(item, lvl), lvl) as dixel:
        return dest.put(dixel, **kwargs)


@strict(forwards="put")
def send_item(item: Any, source: Any = None, dest: Any = None, level: Any = None, remove_src: bool = False,
              anonymize: bool = False, remove_anon: bool = True, profile: str | None = None, unkeyed: bool = False,
              pseudonymizer: Pseudonymizer | None = None, **kwargs: Any) -> Any:
    """Send an item from source to dest: a dest name goes through the source's Sender port (peer/modality), an
    endpoint gets a file copy. ``anonymize`` pseudonymizes with the local engine: an endpoint dest gets the copy
    pseudonymized on the way; a peer gets a pseudonymized copy stored in the source for the send (removed
    afterwards unless ``remove_anon=False``). ``remove_src`` deletes the original once sent (off by default)."""
    lvl = _level(item, level, DicomLevel.STUDIES)
    original = _as_dixel(item, lvl)
    pz = plan(pseudonymizer, profile, unkeyed) if anonymize else None
    outgoing = original
    if isinstance(dest, str):
        if not isinstance(source, Sender):
            raise NotSupportedError(f"{getattr(source, 'name', source)!r} cannot send to {dest!r} (no Sender port)")
        outgoing = anonymize_in(source, original, lvl, pz) if pz is not None else original
        result = source.send(outgoing, dest, level=lvl, **kwargs)
        if pz is not None and remove_anon:
            _delete(source, outgoing, lvl)
    else:
        with file_of(source, original, lvl) as copy:
            result = _deliver(copy, dest, pz, **kwargs)
    if remove_src:
        source.delete(original, level=lvl)
    return result


def _delete(endpoint: Any, item: Any, level: DicomLevel) -> None:
    endpoint.delete(item, level=level)


def _deliver(parcel: Dixel, dest: Any, pz: Pseudonymizer | None, **kwargs: Any) -> Any:
    """Put into dest: plain, or pseudonymized by the one local engine (dest itself or a relay folder)."""
    if pz is None:
        return dest.put(parcel, **kwargs)
    with tempfile.TemporaryDirectory(prefix=f"{os.getpid()}-anon-", dir=route_tmpdir()) as tmp:
        return deliver_pseudonymized(parcel, dest, pz, tmp, **kwargs)


@strict(aliases={"anonymizing": "anonymize"}, forwards="put")  # the API reference's spelling
def upload_item(item: Any, source: Any = None, dest: Any = None, anonymize: bool = False,
                remove_src: bool = False, local: bool = True, profile: str | None = None, unkeyed: bool = False,
                pseudonymizer: Pseudonymizer | None = None, **kwargs: Any) -> Any:
    """Upload a file (Dixel or path from a DcmDir-like source) into dest; returns the id of what dest now holds.

    ``anonymize`` pseudonymizes the file with the local engine first (dest itself when it is ``Pseudonymizing``,
    else a relay folder), so the original never reaches dest; ``local=False`` uploads the original and has dest
    pseudonymize it (``anonymize_in``, the same engine) then delete it. ``remove_src`` deletes the file from the
    source afterwards.
    """
    dixel = _fetch(source, _as_dixel(item, DicomLevel.INSTANCES), DicomLevel.INSTANCES, DixelView.TAGS_FILE) \
        if source is not None else item
    pz = plan(pseudonymizer, profile, unkeyed) if anonymize else None
    if pz is not None and not local and not isinstance(dest, Pseudonymizing):
        put_id = dest.put(dixel, **kwargs)
        stored = Dixel(meta={"ID": str(put_id)}, tags=dict(dixel.tags), level=dixel.level) \
            if isinstance(put_id, str) else dixel
        result = anonymize_in(dest, stored, stored.level, pz)
        dest.delete(stored, level=stored.level)
    else:
        result = _deliver(dixel, dest, pz, **kwargs)
    if remove_src and source is not None:
        source.delete(dixel)
    return result


@strict(forwards="put")
def pull_and_save_item(item: Any, source: Any = None, dest: Any = None, level: Any = None,
                       anonymize: bool = False, profile: str | None = None, unkeyed: bool = False,
                       pseudonymizer: Pseudonymizer | None = None, **kwargs: Any) -> Any:
    """Retrieve a study/series announced by a remote (Retriever port: find(..., retrieve=True)), then get its
    archive from the proxy and put it into dest (e.g. a DcmDir). Returns the dest id."""
    lvl = _level(item, level, DicomLevel.STUDIES)
    dixel = _as_dixel(item, lvl)
    uid_key = {DicomLevel.STUDIES: "StudyInstanceUID", DicomLevel.SERIES: "SeriesInstanceUID"}.get(lvl)
    query = {k: dixel.tag(k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "AccessionNumber")
             if dixel.tag(k) and (k == uid_key or uid_key is None or not dixel.tag(uid_key))}
    found = list(source.find(query, level=lvl, retrieve=True))
    if not found:

        raise NotFound(f"{getattr(source, 'name', source)!r}: no {lvl} matching {item_id(dixel)} to retrieve")
    target = found[0] if isinstance(found[0], Dixel) else _as_dixel(found[0], lvl)
    pz = plan(pseudonymizer, profile, unkeyed) if anonymize else None
    with file_of(source, target, lvl) as archive:
        if not archive.tags:
            archive.tags = dict(target.tags or dixel.tags)
        return _deliver(archive, dest, pz, **kwargs)


@strict(forwards="put")
def index_item(item: Any, source: Any = None, dest: Any = None, level: Any = None, index: str | None = None,
               token: str | None = None, **kwargs: Any) -> Any:
    """Read the item's tags from source and put that summary into dest (an index: CsvFile, a registry, Splunk);
    ``index=``/``token=`` (the original's Splunk options, None: not sent) and other keywords go to ``dest.put``."""
    lvl = _level(item, level, DicomLevel.STUDIES)
    dixel = _fetch(source, _as_dixel(item, lvl), lvl, DixelView.TAGS) if source is not None else item
    options = {k: v for k, v in (("index", index), ("token", token)) if v is not None}
    return dest.put(dixel, **options, **kwargs)


@strict
def query_and_index(item: Any, source: Any = None, dest: Any = None, level: Any = None, index: str | None = None,
                    token: str | None = None, domain: str | None = None) -> int:
    """Run ``item`` (a query mapping, or a Dixel whose tags are the query) on source and put every result into
    dest; ``index``/``token`` go to ``dest.put`` (Splunk), ``domain`` (a remote modality) to ``source.find``.
    Returns the number indexed."""
    lvl = _level(item, level, DicomLevel.STUDIES)
    query = item.tags if isinstance(item, Dixel) else dict(item or {})
    put_options = {k: v for k, v in (("index", index), ("token", token)) if v is not None}
    count = 0
    find_options = {"domain": domain} if domain is not None else {}
    for found in source.find(query, level=lvl, **find_options):
        dest.put(found if isinstance(found, Dixel) else _as_dixel(found, lvl), **put_options)
        count += 1
    logger.info("query_and_index: %d %s indexed from %r", count, lvl, getattr(source, "name", "?"))
    return count


@strict
def say(item: Any, source: Any = None, dest: Any = None, suffix: str | None = None) -> str:
    """Print the item's non-PHI id (and a suffix) on stdout: a handler for trying routes out."""
    text = f"{getattr(source, 'name', 'event')}: {item_id(item)}{' ' + suffix if suffix else ''}"
    print(text, flush=True)
    return text


# --- building routes ------------------------------------------------------------------------------------------------
def resolve(desc: Any, services: Mapping[str, Any] | None = None, observable: bool = False) -> Any:
    """An endpoint from a description: an endpoint as is, a mapping {ctype, ...}, or a service name / path
    (a folder path is an ObservableDcmDir when ``observable``)."""
    if desc is None or isinstance(desc, Dixel):
        return desc
    if isinstance(desc, Mapping):
        data = dict(desc)
        ctype = data.pop("ctype", None)
        if not ctype:
            raise ConfigError("a route's service description needs a 'ctype' key")
        return build_endpoint(ctype, data, service_name=data.get("name"))
    if isinstance(desc, str):
        svc = services if isinstance(services, Services) else load_services(services)
        return resolve_endpoint(desc, svc, observable=observable)
    return desc


def require_observable(trigger: Trigger) -> None:
    """ConfigError unless the trigger's source can be watched (has ``changes()``)."""
    source = trigger.source
    if not callable(getattr(source, "changes", None)):
        raise ConfigError(
            f"route {trigger.handler}: source {getattr(source, 'name', source)!r} ({type(source).__name__}) cannot "
            "be watched; use an observable ctype (ObservableOrthanc, ObservableDcmDir, ObservableProxiedDicom) or a "
            "folder path"
        )


def event_type_for(handler_name: str, source: Any) -> EventType | None:
    """The event type a handler needs from this source (first preference the source says it produces)."""
    wanted = HANDLER_EVENTS.get(handler_name)
    if not wanted:
        return None  # say and plugin handlers without a preference: any event
    produced = getattr(source, "event_types", None)
    if produced:
        produced = {EventType.from_label(e) for e in produced}
        for event_type in wanted:
            if event_type in produced:
                return event_type
    return wanted[0]


def mk_route(handler_name: str, source_desc: Any, dest_desc: Any = None, *, services: Any = None,
             event_type: EventType | str | None = None, **options: Any) -> Trigger:
    """A Trigger running handler ``handler_name`` (core or plugin) on the source's events with the dest bound.

    Descriptions are endpoints, mappings {ctype, ...} or service names (resolved in ``services``); ``options`` go
    to the handler (e.g. anonymize=True); ``event_type`` overrides the handler's preferred event.
    """
    plugins = get_plugin_manager()
    alias = None
    if not plugins.has_handler(handler_name):  # the original DIANA's names: deprecated aliases
        handler_name, options, alias = resolve_alias(handler_name, dict(options))
    handler = plugins.handler(handler_name)
    if not hasattr(handler, FORWARDS):  # a plugin's handler: as strict as the core's
        handler = strict(handler)
    svc = services if isinstance(services, Services) else load_services(services)
    source = resolve(source_desc, svc, observable=True)
    if handler_name == "send_item" and isinstance(dest_desc, str) and dest_desc not in svc.descriptions:
        dest = dest_desc  # a peer or modality name known to the source (Sender port)
    else:
        dest = resolve(dest_desc, svc)
    known = handler_keywords(handler, dest, source)
    if known is not None:  # a routes file's options are checked when it is loaded, before any event is routed
        check_keywords(f"route {handler_name} options", options, known - {"source", "dest"})
    action = functools.partial(handler, source=source, dest=dest, **options)
    if event_type:
        etype: EventType | None = EventType.from_label(event_type)
    elif alias is not None:
        etype = alias_event(alias, source)
    else:
        etype = event_type_for(handler_name, source)
    route = None
    if all(isinstance(d, (str, type(None))) for d in (source_desc, dest_desc)):
        route = {"handler": handler_name, "source": source_desc, "dest": dest_desc,
                 "event": str(etype) if etype else None, "options": dict(options)}
    return Trigger(source=source, event_type=etype, action=action, dest=dest, handler=handler_name, route=route)
