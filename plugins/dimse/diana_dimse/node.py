"""DicomNode: a DICOM application entity (PACS, modality, archive) reached directly over DIMSE with pynetdicom.

``check`` is C-ECHO, ``find``/``exists`` C-FIND (streamed), ``get`` a C-FIND for tags and a C-MOVE to our own
receiver (or a C-GET) for files, ``put`` C-STORE with association reuse. Every failure goes through
``DimseErrors`` (one line, AE titles and status codes named, no PHI).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

from attrs import define, field

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel, DixelView
from diana_core.errors import ConfigError, NotFound, ValidationError
from diana_core.ports import BulkResult, Endpoint, Progress, refuse_unknown
from diana_dimse import association as an
from diana_dimse.errors import DimseErrors, RetrieveIncomplete
from diana_dimse.query import LEVEL_KEY, UID_KEYS, answer_dixel, identifier, query_of
from diana_dimse.storage import MemorySink, Sink, sink_for

logger = logging.getLogger(__name__)

ItemRef = Dixel | str | Mapping[str, Any]


def _level(item: Any, level: DicomLevel | str | int | None) -> DicomLevel:
    if level is not None:
        return DicomLevel.from_label(level)
    return item.level if isinstance(item, Dixel) else DicomLevel.STUDIES


def _method(value: str) -> str:
    value = str(value).lower()
    if value not in ("move", "get"):
        raise ConfigError(f"retrieve_method must be 'move' or 'get', not {value!r}")
    return value


@define(kw_only=True)
class DicomNode(Endpoint):
    """A remote DICOM node (service-file ctype "DicomNode"): where it listens, who we are, how we retrieve.

    Fields:
        host: Host name or address of the node.
        port: The node's DICOM port.
        retrieve_method: move (C-MOVE to our receiver) or get (C-GET on the same association).
        timeout: Seconds to wait for an association or an answer before the node counts as unavailable.
        tls: Talk DICOM over TLS.
        tls_ca_file: CA bundle that signs the node's certificate (TLS).
        tls_cert_file: Our client certificate, when the node asks for one (TLS).
        tls_key_file: The private key of tls_cert_file (TLS).
        tls_verify: Verify the node's certificate (TLS); turn off only for a test node.
        engine: C-STORE engine: dcmtk (dcmtk's dcmsend, the default when /usr/bin/dcmsend exists and tls is off)
            or pynetdicom; C-ECHO/FIND/MOVE/GET always use pynetdicom.
    """

    name: str = "DicomNode"
    host: str = "localhost"
    port: int = 104
    aet: str = "ANY-SCP"  # the called AE title (the node's)
    calling_aet: str = "DIANA"  # our AE title when we call it
    receive_aet: str | None = None  # our C-MOVE destination AE title (default: calling_aet); the node must know it
    receive_port: int | None = None  # where our C-MOVE receiver listens (the port the node has for receive_aet)
    retrieve_method: str = field(default="move", converter=_method)
    query_model: str = "study"  # study root, or "patient" root (patient-level queries always use patient root)
    timeout: float = 30.0
    max_pdu: int = 0  # our maximum PDU length when receiving (0 = unlimited: fewer, larger PDUs)
    tls: bool = False
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_verify: bool = True
    engine: str | None = None  # resolved in __attrs_post_init__ (None: dcmtk when found)
    _mover: Any = field(default=None, init=False, repr=False, eq=False)
    _move_lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False, eq=False)
    _move_sink: Sink | None = field(default=None, init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.query_model not in ("study", "patient"):
            raise ConfigError(f"service {self.name!r}: query_model must be 'study' or 'patient'")
        from diana_dimse.engine import choose_engine

        if self.tls and self.engine is not None and str(self.engine).lower() == "dcmtk":
            raise ConfigError(f"service {self.name!r}: engine dcmtk does not send over TLS: use engine: pynetdicom")
        self.engine = choose_engine(self.name, self.engine, ("dcmsend",), "pynetdicom" if self.tls else "dcmtk")

    # --- associations ---------------------------------------------------------------------------------
    @property
    def errors(self) -> DimseErrors:
        return DimseErrors(f"DicomNode {self.name!r}", self.calling_aet, self.aet, f"{self.host}:{self.port}")

    def _models(self, level: DicomLevel) -> dict[str, str]:
        return an.PATIENT_ROOT if level == DicomLevel.PATIENTS or self.query_model == "patient" else an.STUDY_ROOT

    @contextlib.contextmanager
    def association(self, what: str, contexts: Iterable[str] | None = None, *, ae: Any = None,
                    ext_neg: list[Any] | None = None, handlers: list[Any] | None = None) -> Iterator[Any]:
        """An established association for ``what`` (released afterwards); typed errors when refused."""
        errs = self.errors
        if ae is None:
            ae = an.new_ae(self.calling_aet, self.timeout, self.max_pdu)
            for uid in contexts or ():
                ae.add_requested_context(uid)
        tls_args = an.client_tls(self.host, self.tls_ca_file, self.tls_cert_file, self.tls_key_file,
                                 self.tls_verify) if self.tls else None
        for attempt in (1, 2):
            seen = an.Negotiation()
            with errs.translate(what):
                assoc = ae.associate(self.host, self.port, ae_title=self.aet, ext_neg=ext_neg, tls_args=tls_args,
                                     evt_handlers=[*an.nodelay_handlers(), *(handlers or []), *seen.handlers()])
            seen.settled(assoc)
            if attempt == 1 and errs.dropped_in_negotiation(assoc, seen.connected, seen.reject):
                # the peer closed the connection without answering (no A-ASSOCIATE-RJ came): ask once more to
                # get its answer (or the same drop, reported as such)
                logger.debug("%s: association dropped during negotiation; asking once more", self.name)
                continue
            break
        errs.association(assoc, what, connected=seen.connected, tls=self.tls, reject=seen.reject)
        try:
            with errs.translate(what):
                yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    # --- port methods ---------------------------------------------------------------------------------
    def check(self) -> bool:
        """C-ECHO: False when the node cannot be reached; AssociationRejected when it refuses our AE titles."""
        from diana_core.errors import EndpointUnavailable

        try:
            with self.association("C-ECHO", [an.VERIFICATION]) as assoc:
                self.errors.status("C-ECHO", "", assoc.send_c_echo())
        except EndpointUnavailable as exc:
            logger.warning("%s", exc)
            return False
        return True

    def find(self, query: ItemRef, level: DicomLevel | str | int = DicomLevel.STUDIES, retrieve: bool = False,
             **kwargs: Any) -> Iterator[Dixel]:
        """C-FIND at ``level`` (patients/studies/series/instances) by any keys; answers stream as Dixels.

        ``retrieve`` is accepted for Retriever compatibility and does nothing: a DicomNode retrieves in ``get``.
        """
        refuse_unknown(f"DicomNode {self.name!r}", "find", kwargs)
        lvl = DicomLevel.from_label(level)
        where = f"DicomNode {self.name!r}"
        ds = identifier(where, query_of(where, query, lvl), lvl)
        return self._find(ds, lvl)

    def _find(self, ds: Any, lvl: DicomLevel) -> Iterator[Dixel]:
        errs, count = self.errors, 0
        model = self._models(lvl)["find"]
        with self.association(f"C-FIND ({lvl})", [model]) as assoc:
            for status, answer in assoc.send_c_find(ds, model):
                code = errs.status("C-FIND", f"at {lvl} level", status)
                if code in (0xFF00, 0xFF01) and answer is not None:
                    count += 1
                    yield answer_dixel(answer, lvl)
        logger.info("%s: C-FIND at %s level: %d answers", self.name, lvl, count)

    def exists(self, item: ItemRef, level: DicomLevel | str | int | None = None, **kwargs: Any) -> bool:
        """True if the node answers a C-FIND for the item (a Dixel's UIDs, a UID at ``level``, or a query)."""
        refuse_unknown(f"DicomNode {self.name!r}", "exists", kwargs)
        lvl = _level(item, level)
        for _ in self.find(item, level=lvl):
            return True
        return False

    def count_instances(self, item: ItemRef, level: DicomLevel | str | int = DicomLevel.STUDIES) -> int:
        """InstanceCounter port: instances the node holds under a study or series (0 when absent), from C-FIND's
        NumberOfStudy/SeriesRelatedInstances, else by listing them series by series (those keys are optional)."""
        lvl = DicomLevel.from_label(level)
        if lvl >= DicomLevel.INSTANCES or lvl == DicomLevel.PATIENTS:
            return int(self.exists(item, level=lvl))
        answer = next(iter(self.find(item, level=lvl)), None)
        if answer is None:
            return 0
        key = "NumberOfStudyRelatedInstances" if lvl == DicomLevel.STUDIES else "NumberOfSeriesRelatedInstances"
        said = _number(answer.tag(key))
        if said is not None:
            return said
        series = list(self.find(answer, level=DicomLevel.SERIES)) if lvl == DicomLevel.STUDIES else [answer]
        total = 0
        for one in series:
            listed = _number(one.tag("NumberOfSeriesRelatedInstances"))
            total += listed if listed is not None else sum(1 for _ in self.find(one, level=DicomLevel.INSTANCES))
        return total

    def get(self, item: ItemRef, level: DicomLevel | str | int | None = None,
            view: DixelView | str | int = DixelView.TAGS, dest: str | os.PathLike[str] | IO[bytes] | None = None,
            **kwargs: Any) -> Dixel:
        """The item (Dixel, UID at ``level``, or query): TAGS by C-FIND; FILE retrieves it (C-MOVE or C-GET) into
        ``dest`` (a folder, a ``.zip`` path or a binary file object), or into memory for one instance."""
        refuse_unknown(f"DicomNode {self.name!r}", "get", kwargs)
        lvl, wanted = _level(item, level), DixelView.from_label(view)
        where = f"DicomNode {self.name!r}"
        query = query_of(where, item, lvl)
        dixel: Dixel | None = None
        if DixelView.TAGS in wanted or DixelView.META in wanted or not wanted:
            dixel = next(iter(self.find(query, level=lvl)), None)
            if dixel is None:
                raise NotFound(f"{where}: no {lvl} matching {_label(query)}")
        if DixelView.FILE in wanted:
            if dest is None and lvl != DicomLevel.INSTANCES:
                raise ValidationError(f"{where}: the files of a {lvl} item go to a folder or a zip: give dest=")
            uids = {k: v for k, v in (dixel.tags if dixel is not None else query).items() if k in UID_KEYS}
            uids = {**uids, **{k: v for k, v in query.items() if k in UID_KEYS}}
            sink = sink_for(dest)
            count = self.retrieve(uids, lvl, sink)
            if isinstance(sink, MemorySink):
                from diana_dimse.files import dixel_from_bytes

                file_dixel = dixel_from_bytes(sink.files[0])
                file_dixel.tags = {**(dixel.tags if dixel is not None else {}), **file_dixel.tags}
                dixel = file_dixel
            else:
                dixel = dixel or Dixel(tags=dict(query), level=lvl)
                if isinstance(dest, (str, os.PathLike)):
                    dixel.meta["FileName"] = os.fspath(dest)
            dixel.meta["Instances"] = count
        assert dixel is not None
        dixel.level = lvl
        return dixel

    def put(self, item: Dixel | str | os.PathLike[str] | bytes, **kwargs: Any) -> Any:
        """C-STORE one instance (file bytes, a path, a Dixel with ``file`` or a FileName) and return its SOP
        Instance UID; a study/series Dixel whose FileName is a zip sends every member (BulkResult)."""
        from diana_dimse.store import Storer, payloads

        refuse_unknown(f"DicomNode {self.name!r}", "put", kwargs)
        items = list(payloads(item))
        if len(items) == 1 and not (isinstance(item, Dixel) and item.level < DicomLevel.INSTANCES):
            if self.engine == "dcmtk":
                from diana_dimse.dcmsend import send_one

                return send_one(self, items[0])
            with Storer(self) as storer:
                return storer.send(items[0])
        result = self.put_many(items)
        if result.failed:
            raise RetrieveIncomplete(f"DicomNode {self.name!r}: C-STORE of {len(result.failed)} of "
                                     f"{result.done + len(result.failed)} instances failed "
                                     f"(first: {result.failed[0][1]})", failed=len(result.failed))
        return result

    def put_many(self, items: Iterable[Any], workers: int = 1, progress: Progress | None = None) -> BulkResult:
        """C-STORE many instances over ``workers`` associations at once (each renewed only when new contexts are
        needed; fewer if the node refuses extra ones); failures are collected per instance."""
        if self.engine == "dcmtk":
            from diana_dimse import dcmsend

            return dcmsend.store_many(self, items, progress, workers)
        from diana_dimse.store import store_many

        return store_many(self, items, progress, workers)

    # --- retrieval ------------------------------------------------------------------------------------
    def retrieve(self, uids: Mapping[str, Any], level: DicomLevel, sink: Sink) -> int:
        """C-MOVE (to our receiver) or C-GET the item named by ``uids`` into ``sink``; returns the instance count.
        Failed sub-operations, or fewer arrivals than the node reported, raise RetrieveIncomplete."""
        where = f"DicomNode {self.name!r}"
        ds = identifier(where, {k: uids[k] for k in UID_KEYS if uids.get(k)}, level, return_keys=False)
        ok = False
        try:
            if self.retrieve_method == "get":
                counts = self._c_get(ds, level, sink)
            else:
                counts = self._c_move(ds, level, sink)
            ok = True
        finally:
            sink.close(ok=ok)
        completed, failed, warning = counts
        label = f"{level} {uids.get(LEVEL_KEY[level], '?')}"
        service = "C-GET" if self.retrieve_method == "get" else "C-MOVE"
        if failed or sink.count < completed + warning:
            raise RetrieveIncomplete(
                f"{where}: {service} of {label}: {failed} sub-operation(s) failed, {completed} completed, "
                f"{warning} with warnings; {sink.count} instance(s) arrived", completed, failed, warning, sink.count)
        if sink.count == 0:
            raise NotFound(f"{where}: {service} of {label}: the node sent no instances")
        logger.info("%s: %s of %s: %d instance(s)", self.name, service, level, sink.count)
        return sink.count

    def _final_counts(self, service: str, responses: Iterable[tuple[Any, Any]]) -> tuple[int, int, int]:
        """(completed, failed, warning) sub-operations from the last response; a failure status raises, naming
        the failed sub-operations when the node counted some."""
        from diana_dimse.errors import DimseStatusError, status_meaning

        errs, counts = self.errors, (0, 0, 0)
        for status, _ in responses:
            code = errs.status(service, "", status) if status is None or "Status" not in status else \
                int(status.Status)
            counts = (int(status.get("NumberOfCompletedSuboperations", 0) or 0),
                      int(status.get("NumberOfFailedSuboperations", 0) or 0),
                      int(status.get("NumberOfWarningSuboperations", 0) or 0))
            if status_meaning(service, code)[0] == "Failure":
                try:
                    errs.status(service, "", status)
                except DimseStatusError as exc:
                    if counts[1]:
                        raise RetrieveIncomplete(f"{exc}; {counts[1]} sub-operation(s) failed, {counts[0]} "
                                                 "completed", counts[0], counts[1], counts[2]) from None
                    raise
        return counts

    def _c_get(self, ds: Any, level: DicomLevel, sink: Sink) -> tuple[int, int, int]:
        from pynetdicom import evt

        model = self._models(level)["get"]
        ae = an.new_ae(self.calling_aet, self.timeout, self.max_pdu)
        roles = an.add_get_contexts(ae, model)

        def on_store(event: Any) -> int:
            sink.add(str(event.request.AffectedSOPInstanceUID), {}, event.encoded_dataset(include_meta=True))
            return 0x0000

        with self.association(f"C-GET ({level})", ae=ae, ext_neg=roles,
                              handlers=[(evt.EVT_C_STORE, on_store)]) as assoc:
            return self._final_counts("C-GET", assoc.send_c_get(ds, model))

    def _c_move(self, ds: Any, level: DicomLevel, sink: Sink) -> tuple[int, int, int]:
        model = self._models(level)["move"]
        with self._move_lock:  # one C-MOVE at a time per node: our receiver hands arrivals to the current sink
            self.receiver()
            self._move_sink = sink
            try:
                with self.association(f"C-MOVE ({level})", [model]) as assoc:
                    return self._final_counts("C-MOVE", assoc.send_c_move(ds, self.receive_aet or self.calling_aet,
                                                                           model))
            finally:
                self._move_sink = None

    def receiver(self) -> Any:
        """Our C-MOVE destination (a Store SCP on ``receive_port``), started on first use, kept until close()."""
        if self._mover is None:
            if not self.receive_port:
                raise ConfigError(f"service {self.name!r}: C-MOVE needs receive_port (the port the node knows for "
                                  f"our AE {self.receive_aet or self.calling_aet!r}), or use retrieve_method: get")
            from diana_dimse.scp import StoreServer

            ssl_ctx = None
            if self.tls and self.tls_cert_file:
                ssl_ctx = an.server_tls(self.tls_cert_file, self.tls_key_file, self.tls_ca_file)
            self._mover = StoreServer(self.receive_aet or self.calling_aet, self.receive_port, self._on_moved,
                                      timeout=self.timeout, max_pdu=self.max_pdu, ssl_context=ssl_ctx,
                                      need_keys=False, name=f"DicomNode {self.name!r} receiver").start()
        return self._mover

    def _on_moved(self, sop_uid: str, keys: dict[str, str], data: bytes) -> None:
        sink = self._move_sink
        if sink is None:
            raise ValueError("no C-MOVE in progress")  # refused with a failure status
        sink.add(sop_uid, keys, data)

    def close(self) -> None:
        """Stop our C-MOVE receiver (a later retrieve starts it again)."""
        mover, self._mover = self._mover, None
        if mover is not None:
            mover.stop()

    stop = close


def _number(value: Any) -> int | None:
    """An optional count attribute as an int; None when the node left it out or empty."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _label(query: Mapping[str, Any]) -> str:
    """Non-PHI label of a query: its UID keys only."""
    uids = [f"{k}={v}" for k, v in query.items() if k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")]
    return ", ".join(uids) or "the query"
