"""DicomReceiver: a C-STORE SCP that writes what modalities send into a folder and reports it as events.

Each instance lands atomically at ``path/StudyInstanceUID/SOPInstanceUID.dcm`` (temp name + rename) and yields
INSTANCE_ADDED; a series or study with no new instance for ``stable_age`` seconds yields SERIES_STABLE or
STUDY_STABLE (again if more arrives later), like Orthanc's stable events. The listener starts on the first ``changes()``
(or ``start()``).

Delivery contract (diana_core.delivery): the sender hears "success" only once the file and its folder are fsynced
and a pending mark sits beside the file. The mark goes when the watcher acknowledged the instance's event and the
SERIES_STABLE and STUDY_STABLE that cover it (routes may bind to any of them); a restart (after kill -9 too)
announces every still-marked file again. ``durable: false`` turns both off (benchmarks only). With ``engine: dcmtk``
dcmtk's storescp answers the senders and this receiver takes its files in (``storescp.py``: a weaker guarantee).
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import socket
import threading
import time
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from attrs import define, evolve, field

from diana_core.delivery import PendingMarks
from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel, DixelView
from diana_core.errors import ConfigError, NotFound, ValidationError
from diana_core.ports import Acknowledging, Endpoint, Event, EventType, Observable, Resuming, refuse_unknown
from diana_core.usecases.conditions import ASSOCIATION_KEYS
from diana_dimse.storage import FolderSink, safe_name

logger = logging.getLogger(__name__)

FORGET_AFTER = 24 * 3600.0
"""Seconds a stable study or series stays remembered (its instance count, for the next STABLE event should more
arrive); then it is forgotten, so a receiver running for months holds its recent studies, not every one it ever
received. One that grows later is counted again from its folder, so its STABLE event still names every instance."""
FORGET_EVERY = 60.0


@define
class _Study:
    last: float
    count: int
    patient_id: str | None = None
    stable: bool = False
    association: dict[str, str] = field(factory=dict)  # of the study's last instance (routing rules' facts)
    files: list[str] = field(factory=list)  # a series' files (a study's are its folder)
    seen: set[str] = field(factory=set)  # the same, to tell a resent instance (same file) from a new one
    study_uid: str = ""


@define(kw_only=True)
class DicomReceiver(Endpoint, Observable, Acknowledging, Resuming):
    """Store SCP on ``port`` as ``aet`` writing into the folder ``path`` (service-file ctype "DicomReceiver").

    Fields:
        path: Folder the received instances are written to (durable before success is answered).
        aet: Our AE title (the called AE title modalities send to).
        port: TCP port the Store SCP listens on (modalities and PACS must know it).
        stable_age: Seconds without a new instance after which a series/study is complete (SERIES/STUDY_STABLE).
        polling_interval: Seconds between checks for new events by the watcher.
        timeout: Seconds an association may stay silent before it is aborted.
        max_pdu: Our maximum PDU length (0 = unlimited).
        require_called_aet: Refuse associations whose called AE title is not ours.
        allowed_calling_aets: Calling AE titles allowed to send (empty = any).
        tls_cert_file: Server certificate for DICOM over TLS (with tls_key_file).
        tls_key_file: The private key of tls_cert_file.
        tls_ca_file: CA bundle: when set, senders must present a certificate it signed.
        durable: Answer success only once the file and its folder are fsynced and a pending mark is written, and
            announce unrouted files again after a restart (the delivery contract; false only to measure it).
        engine: pynetdicom (default) or dcmtk (dcmtk's storescp: ~3x faster; one association at a time, no TLS or
            AE title checks; success is answered once the file is written, before Diana's fsync: it survives a
            kill, not a power loss in that window - docs/guarantees.md).
    """

    event_types = (EventType.INSTANCE_ADDED, EventType.STUDY_STABLE, EventType.SERIES_STABLE)
    name: str = "DicomReceiver"
    path: str = "."
    aet: str = "DIANA"
    port: int = 11112
    host: str = ""  # bind address ("" = every interface)
    stable_age: float = 60.0
    polling_interval: float = 1.0
    timeout: float = 30.0
    max_pdu: int = 0
    require_called_aet: bool = False
    allowed_calling_aets: list[str] = field(factory=list)
    max_associations: int = 10  # open at once; more callers are rejected as "local limit exceeded" (transient)
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_ca_file: str | None = None
    durable: bool = True  # fsync + pending marks before "success" (the delivery contract); off only to measure it
    engine: str | None = None  # resolved in __attrs_post_init__ (None: pynetdicom, whose guarantee is the full one)
    _server: Any = field(default=None, init=False, repr=False, eq=False)
    _sink: FolderSink | None = field(default=None, init=False, repr=False, eq=False)
    _events: queue.SimpleQueue = field(factory=queue.SimpleQueue, init=False, repr=False, eq=False)
    _studies: dict[str, _Study] = field(factory=dict, init=False, repr=False, eq=False)
    _series: dict[str, _Study] = field(factory=dict, init=False, repr=False, eq=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False, eq=False)
    # studies / series not yet stable: what each poll looks at (not every study since the start)
    _active: set[str] = field(factory=set, init=False, repr=False, eq=False)
    _active_series: set[str] = field(factory=set, init=False, repr=False, eq=False)
    _next_forget: float = field(default=0.0, init=False, repr=False, eq=False)
    _replaying: bool = field(default=False, init=False, repr=False, eq=False)
    _marks: PendingMarks | None = field(default=None, init=False, repr=False, eq=False)
    _replayed: int = field(default=0, init=False, repr=False, eq=False)
    _holds: dict[str, int] = field(factory=dict, init=False, repr=False, eq=False)  # file -> acks still owed
    # files a study's / series' next STABLE event will cover (each file is covered by exactly one of each)
    _pending_files: dict[tuple[str, str], dict[str, None]] = field(factory=dict, init=False, repr=False, eq=False)
    _covers: dict[int, tuple[Event, list[str]]] = field(factory=dict, init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        from diana_dimse.engine import choose_engine

        self.engine = choose_engine(self.name, self.engine, ("storescp",), default="pynetdicom")
        unsupported = [k for k in ("tls_cert_file", "require_called_aet", "allowed_calling_aets", "host")
                       if getattr(self, k)]
        if self.engine == "dcmtk" and unsupported:
            raise ConfigError(f"service {self.name!r}: engine dcmtk does not support {', '.join(unsupported)}: "
                              "use engine: pynetdicom")

    # --- lifecycle ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._server is not None and self._server.running

    @property
    def received(self) -> int:
        """Instances stored since start."""
        return self._server.received if self._server is not None else 0

    @property
    def peak_associations(self) -> int:
        """The most associations that were open at once since start."""
        return self._server.peak_associations if self._server is not None else 0

    def start(self) -> DicomReceiver:
        """Listen (idempotent); EndpointUnavailable when the port cannot be bound."""
        if self.running:
            return self
        from diana_dimse.association import server_tls
        from diana_dimse.scp import StoreServer

        self._sink = FolderSink(self.path, by_study=True, durable=self.durable, mark=self.durable)
        if self.durable and self._marks is None:
            self._marks = PendingMarks(self.path)
            self._replayed = self._replay()
        if self.engine == "dcmtk":
            from diana_dimse.storescp import DcmtkStoreServer

            server = DcmtkStoreServer(self.aet, self.port, Path(self.path) / ".incoming", self._on_files,
                                      timeout=self.timeout, max_pdu=self.max_pdu, name=f"DicomReceiver {self.name!r}")
            self._server = server
            try:
                server.start()
            except BaseException:
                self._server = None
                raise
            self._replayed += server.caught_up
            self.port = server.port
            return self
        ssl_ctx = server_tls(self.tls_cert_file, self.tls_key_file, self.tls_ca_file) if self.tls_cert_file else None
        self._server = StoreServer(self.aet, self.port, self._on_store, host=self.host, timeout=self.timeout,
                                   max_pdu=self.max_pdu, ssl_context=ssl_ctx,
                                   require_called_aet=self.require_called_aet,
                                   allowed_calling_aets=self.allowed_calling_aets,
                                   max_associations=self.max_associations, association_facts=True,
                                   name=f"DicomReceiver {self.name!r}").start()
        self.port = self._server.port
        return self

    def stop(self) -> None:
        """Stop listening; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.stop()

    def _on_store(self, sop_uid: str, keys: dict[str, str], data: bytes) -> None:
        assert self._sink is not None
        association = {k: keys.pop(k) for k in ASSOCIATION_KEYS if k in keys}  # routing rules' facts, not tags
        path = self._sink.add(sop_uid, keys, data)  # durable (and marked) before the sender hears success
        self._announce(str(path), sop_uid, keys, association)

    def _on_files(self, batch: list[tuple[str, Path, dict[str, str]]]) -> int:
        """Files storescp finished (dcmtk engine): taken in durably, then announced (``storescp.take_in``)."""
        from diana_dimse.storescp import take_in

        assert self._sink is not None
        return take_in(f"DicomReceiver {self.name!r}", self._sink, batch, self.read_header, self._announce)

    def _announce(self, path: str, sop_uid: str, keys: dict[str, str], association: dict[str, str]) -> None:
        study_uid = keys.get("StudyInstanceUID", "")
        with self._lock:
            study = self._studies.get(study_uid)
            if study is None:  # new, or forgotten (FORGET_AFTER): what its folder already holds counts too
                before = [] if self._replaying else self._files_before(path)
                study = self._studies[study_uid] = _Study(last=time.monotonic(), count=len(before))
            else:
                before = []
            self._active.add(study_uid)
            series_uid = keys.get("SeriesInstanceUID", "")
            series = self._series.get(series_uid)
            if series is None:
                earlier = self._series_files(before, series_uid)
                series = self._series[series_uid] = _Study(last=time.monotonic(), count=len(earlier),
                                                           study_uid=study_uid, files=earlier, seen=set(earlier))
            self._active_series.add(series_uid)
            fresh = path not in series.seen  # a resent instance overwrote its file: one file, counted once
            study.last, study.count, study.stable = time.monotonic(), study.count + fresh, False
            study.patient_id = keys.get("PatientID") or study.patient_id
            study.association = association
            series.last, series.count, series.stable = time.monotonic(), series.count + fresh, False
            series.patient_id, series.association = study.patient_id, association
            if fresh:
                series.files.append(path)
                series.seen.add(path)
            if self._marks is not None:
                owed = 1  # this INSTANCE_ADDED, plus the SERIES_STABLE and STUDY_STABLE not yet owed for the file
                for key in (("study", study_uid), ("series", series_uid)):
                    pending = self._pending_files.setdefault(key, {})
                    if path not in pending:
                        pending[path] = None
                        owed += 1
                self._holds[path] = self._holds.get(path, 0) + owed
        tags = {**keys, "SOPInstanceUID": sop_uid}
        dixel = Dixel(meta={"FileName": str(path), "Association": association}, tags=tags, level=DicomLevel.INSTANCES)
        self._events.put(Event(event_type=EventType.INSTANCE_ADDED, source_name=self.name, data=dixel))

    @staticmethod
    def _files_before(path: str) -> list[str]:
        """The other instances in a study's folder (a study forgotten, then sent more): none for a new study."""
        folder, name = os.path.split(path)
        with os.scandir(folder) as entries:
            return [e.path for e in entries if e.name.endswith(".dcm") and not e.name.startswith(".") and e.name != name]

    def _series_files(self, files: list[str], series_uid: str) -> list[str]:
        """Those of ``files`` in the series (their headers read up to the series UID; only for a forgotten study)."""
        from diana_dimse.files import read_keys

        out = []
        for path in files:
            try:
                if str(read_keys(path, ("SeriesInstanceUID",), self.read_header).get("SeriesInstanceUID")) == \
                        series_uid:
                    out.append(path)
            except Exception as exc:  # noqa: BLE001 - an unreadable file is not counted (announced when it came)
                logger.debug("DicomReceiver %r: %s not counted: %s", self.name, os.path.basename(path),
                             type(exc).__name__)
        return out

    def _forget(self, now: float) -> None:
        """Drop the studies and series stable for FORGET_AFTER (lock held)."""
        self._next_forget = now + FORGET_EVERY
        for records in (self._studies, self._series):
            for uid in [uid for uid, r in records.items() if r.stable and now - r.last >= FORGET_AFTER]:
                del records[uid]

    @property
    def remembered(self) -> int:
        """Studies and series held in memory (each stays FORGET_AFTER once stable)."""
        return len(self._studies) + len(self._series)

    def resumes(self) -> bool:
        """Resuming port: unrouted instances are announced again after a restart (unless ``durable: false``)."""
        return self.durable

    def resume_summary(self) -> str:
        """Resuming port: start listening; how many received instances a previous run left unrouted."""
        self.start()
        if not self.durable:
            return "not durable: instances unrouted at a stop are not announced again"
        return f"{self._replayed} received instance(s) not yet routed"

    def _replay(self) -> int:
        """Announce again every file received (and answered success) but not yet routed by a previous run."""
        from pydicom import dcmread

        assert self._marks is not None
        replayed = 0
        self._replaying = True  # every marked file is announced: none counts as already there
        for path in self._marks.pending():
            try:
                ds = dcmread(path, stop_before_pixels=True,
                             specific_tags=["SOPInstanceUID", "PatientID", "StudyInstanceUID", "SeriesInstanceUID"])
            except Exception as exc:  # noqa: BLE001 - we wrote it whole; still, one bad file must not stop the rest
                logger.error("DicomReceiver %r: cannot replay %s: %s", self.name, path.name, type(exc).__name__)
                continue
            keys = {k: str(ds.get(k)) for k in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID") if ds.get(k)}
            self._announce(str(path), str(ds.get("SOPInstanceUID", path.stem)), keys, {})
            replayed += 1
        self._replaying = False
        if replayed:
            logger.info("DicomReceiver %r: %d received instance(s) not yet routed: announced again", self.name,
                        replayed)
        return replayed

    def ack(self, event: Event) -> None:
        """Acknowledging port: the watcher is done with ``event``. A file's pending mark goes once its
        INSTANCE_ADDED and the SERIES_STABLE and STUDY_STABLE covering it were all acknowledged."""
        if self._marks is None or not isinstance(event.data, Dixel):
            return
        with self._lock:
            if EventType.from_label(event.event_type) == EventType.INSTANCE_ADDED:
                covered = [event.data.fn] if event.data.fn else []
            else:
                covered = self._covers.pop(id(event), (event, []))[1]
            done = []
            for path in covered:
                left = self._holds.get(path, 1) - 1
                if left > 0:
                    self._holds[path] = left
                else:
                    self._holds.pop(path, None)
                    done.append(path)
        for path in done:
            self._marks.done(path)

    # --- Observable ------------------------------------------------------------------------------------
    def changes(self, now: float | None = None, **kwargs: Any) -> list[Event]:
        """INSTANCE_ADDED for each instance stored since the last call, then SERIES_STABLE and STUDY_STABLE for
        quiet series and studies."""
        self.start()
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                break
        now = time.monotonic() if now is None else now
        with self._lock:
            if now >= self._next_forget:
                self._forget(now)
            quiet = [(uid, self._studies[uid]) for uid in self._active if now - self._studies[uid].last >= self.stable_age]
            quiet_series = [(uid, self._series[uid]) for uid in self._active_series
                            if now - self._series[uid].last >= self.stable_age]
            for _, study in quiet + quiet_series:
                study.stable = True
            self._active.difference_update(uid for uid, _ in quiet)
            self._active_series.difference_update(uid for uid, _ in quiet_series)
            quiet_series = [(uid, evolve(s, files=list(s.files), seen=set())) for uid, s in quiet_series]
            study_covers = {uid: list(self._pending_files.pop(("study", uid), {})) for uid, _ in quiet}
            series_covers = {uid: list(self._pending_files.pop(("series", uid), {})) for uid, _ in quiet_series}
        for uid, series in quiet_series:
            tags = {"StudyInstanceUID": series.study_uid, "SeriesInstanceUID": uid,
                    **({"PatientID": series.patient_id} if series.patient_id else {})}
            meta = {"FileName": series.files[0], "Files": series.files, "Instances": series.count,
                    "Association": dict(series.association)}  # FileName: the file routing conditions read
            event = Event(event_type=EventType.SERIES_STABLE, source_name=self.name,
                          data=Dixel(meta=meta, tags=tags, level=DicomLevel.SERIES))
            self._cover(event, series_covers[uid])
            events.append(event)
        for uid, study in quiet:
            tags = {"StudyInstanceUID": uid, **({"PatientID": study.patient_id} if study.patient_id else {})}
            folder = self._study_folder(uid)
            dixel = Dixel(meta={"FileName": str(folder), "Instances": study.count,
                                "Association": dict(study.association)}, tags=tags,
                          level=DicomLevel.STUDIES)
            event = Event(event_type=EventType.STUDY_STABLE, source_name=self.name, data=dixel)
            self._cover(event, study_covers[uid])
            events.append(event)
        return events

    def _cover(self, event: Event, files: list[str]) -> None:
        """Remember which files a stable event stands for (the event kept: its id stays unique until acked)."""
        if self._marks is not None:
            with self._lock:
                self._covers[id(event)] = (event, list(files))

    # --- Endpoint over the folder ---------------------------------------------------------------------
    def _study_folder(self, study_uid: str) -> Path:
        return Path(self.path) / safe_name(study_uid)

    def _path_of(self, item: Any, level: DicomLevel) -> Path:
        if isinstance(item, Dixel):
            if item.fn:
                return Path(item.fn)
            uid = item.tag("StudyInstanceUID")
            if uid and level < DicomLevel.SERIES:
                return self._study_folder(str(uid))
            sop = item.tag("SOPInstanceUID")
            if uid and sop and level >= DicomLevel.INSTANCES:  # where _on_store put it (FolderSink, by study)
                return self._study_folder(str(uid)) / f"{safe_name(str(sop))}.dcm"
            raise ValidationError(f"DicomReceiver {self.name!r}: item {item.summary()['id']} names no file")
        return Path(os.fspath(item))

    def check(self) -> bool:
        """True when listening, or when the port is free to listen on."""
        if self.running:
            return True
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((self.host, self.port))
            except OSError as exc:
                logger.warning("DicomReceiver %r: port %d is not available: %s", self.name, self.port, exc.strerror)
                return False
        return True

    def get(self, item: Any, level: DicomLevel | str | int | None = None,
            view: DixelView | str | int = DixelView.TAGS, dest: str | os.PathLike[str] | IO[bytes] | None = None,
            **kwargs: Any) -> Dixel:
        """A received instance (tags; FILE = bytes) or study (FILE = a zip of its folder written to ``dest``)."""
        refuse_unknown(f"DicomReceiver {self.name!r}", "get", kwargs)
        lvl = DicomLevel.from_label(level) if level is not None else getattr(item, "level", DicomLevel.INSTANCES)
        wanted, path = DixelView.from_label(view), self._path_of(item, lvl)
        if not path.exists():
            raise NotFound(f"DicomReceiver {self.name!r}: no {path.name} in {self.path}")
        series_files = item.meta.get("Files") if isinstance(item, Dixel) and lvl == DicomLevel.SERIES else None
        if path.is_dir() or series_files:
            files = sorted(Path(f) for f in series_files if os.path.exists(f)) if series_files else \
                sorted(p for p in path.rglob("*.dcm") if not p.name.startswith("."))
            if not files:
                raise NotFound(f"DicomReceiver {self.name!r}: {path.name} holds no instances")
            from diana_dimse.files import dixel_from_bytes

            dixel = dixel_from_bytes(files[0].read_bytes())
            dixel.file, dixel.level = None, DicomLevel.SERIES if series_files else DicomLevel.STUDIES
            dixel.meta = {"FileName": str(path), "Instances": len(files)}
            if DixelView.FILE in wanted:
                if dest is None:
                    raise ValidationError(f"DicomReceiver {self.name!r}: the file of a study is a zip: give dest=")
                with zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
                    for f in files:
                        archive.write(f, f.name)
                if isinstance(dest, (str, os.PathLike)):
                    dixel.meta["FileName"] = os.fspath(dest)
            return dixel
        from diana_dimse.files import dixel_from_bytes

        dixel = dixel_from_bytes(path.read_bytes(), fn=str(path))
        if DixelView.FILE not in wanted:
            dixel.file = None
        return dixel

    def read_header(self, path: str | os.PathLike[str]) -> Any:
        """A received file's header (no pixels), for routing rules' conditions (HeaderReader port)."""
        from pydicom import dcmread

        return dcmread(os.fspath(path), stop_before_pixels=True)

    def read_keys(self, path: str | os.PathLike[str], keys: Iterable[str]) -> Any:
        """A received file's header parsed only up to the last of ``keys`` (KeysReader port: routing conditions)."""
        from diana_dimse.files import read_keys

        return read_keys(os.fspath(path), keys, self.read_header)

    def delete(self, item: Any, level: DicomLevel | str | int | None = None, **kwargs: Any) -> bool:
        """Remove a received file (or a study folder); True if something was removed."""
        refuse_unknown(f"DicomReceiver {self.name!r}", "delete", kwargs)
        lvl = DicomLevel.from_label(level) if level is not None else getattr(item, "level", DicomLevel.INSTANCES)
        path = self._path_of(item, lvl)
        if path.is_dir():
            shutil.rmtree(path)
            return True
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True
