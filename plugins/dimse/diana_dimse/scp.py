"""A C-STORE SCP (plus C-ECHO) in a background pynetdicom server: the DicomReceiver's listener and the DicomNode's
own C-MOVE destination. Each received instance is handed to ``on_store(sop_uid, keys, file_bytes)`` as the peer
sent it (file meta added, dataset not re-encoded); ``keys`` holds PatientID and the study/series UIDs when asked.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

from diana_core.errors import EndpointUnavailable
from diana_dimse.association import add_all_storage_contexts, new_ae, nodelay_handlers, server_contexts

logger = logging.getLogger(__name__)

OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000

OnStore = Callable[[str, dict[str, str], bytes], Any]


class StoreServer:
    """Listens on ``host:port`` as ``ae_title`` until ``stop()``; thread-safe ``on_store`` is the caller's."""

    def __init__(self, ae_title: str, port: int, on_store: OnStore, *, host: str = "", timeout: float = 30.0,
                 max_pdu: int = 0, ssl_context: ssl.SSLContext | None = None, need_keys: bool = True,
                 require_called_aet: bool = False, allowed_calling_aets: list[str] | None = None,
                 max_associations: int = 10, name: str = "StoreSCP", association_facts: bool = False) -> None:
        self.ae_title, self.host, self.port, self.on_store = ae_title, host, port, on_store
        self.timeout, self.max_pdu, self.ssl_context = timeout, max_pdu, ssl_context
        self.need_keys = need_keys
        self.association_facts = association_facts  # add CallingAET, CalledAET, PeerAddress to the keys
        self.require_called_aet = require_called_aet
        self.allowed_calling_aets = list(allowed_calling_aets or [])
        self.name = name
        self.max_associations = max_associations
        self.received = 0
        self.refused = 0
        self.associations = 0  # accepted since start
        self.peak_associations = 0  # most open at once
        self._open = 0
        self._count_lock = threading.Lock()
        self._server: Any = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> StoreServer:
        """Bind and serve in background threads; EndpointUnavailable when the port cannot be bound."""
        if self._server is not None:
            return self
        from pynetdicom import evt

        ae = new_ae(self.ae_title, self.timeout, self.max_pdu)
        ae.require_called_aet = self.require_called_aet
        ae.maximum_associations = self.max_associations  # beyond it a caller is rejected as "local limit exceeded"
        if self.allowed_calling_aets:
            ae.require_calling_aet = self.allowed_calling_aets
        add_all_storage_contexts(ae)
        handlers = [(evt.EVT_C_STORE, self._handle_store), (evt.EVT_ACCEPTED, self._opened),
                    (evt.EVT_RELEASED, self._closed), (evt.EVT_ABORTED, self._closed), *nodelay_handlers()]
        try:
            self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers,
                                           ssl_context=self.ssl_context, contexts=server_contexts(ae))
        except OSError as exc:
            raise EndpointUnavailable(f"{self.name}: cannot listen on port {self.port} as {self.ae_title!r}: "
                                      f"{exc.strerror or exc}") from None
        if self.port == 0:
            self.port = int(self._server.server_address[1])
        logger.info("%s: listening on port %d as %r", self.name, self.port, self.ae_title)
        return self

    def stop(self) -> None:
        """Stop listening and close open associations; safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()

    def _opened(self, event: Any) -> None:
        with self._count_lock:
            self.associations += 1
            self._open += 1
            self.peak_associations = max(self.peak_associations, self._open)

    def _closed(self, event: Any) -> None:
        with self._count_lock:
            self._open = max(0, self._open - 1)

    def _handle_store(self, event: Any) -> int:
        sop_uid = str(event.request.AffectedSOPInstanceUID)
        try:
            data = event.encoded_dataset(include_meta=True)
            keys = _header_keys(event, data) if self.need_keys else {}
            if self.association_facts:
                keys.update(association_keys(event))
        except Exception as exc:  # noqa: BLE001 - a dataset we cannot read is refused, the server goes on
            self.refused += 1
            logger.warning("%s: refused instance %s: unreadable dataset (%s)", self.name, sop_uid, type(exc).__name__)
            return CANNOT_UNDERSTAND
        try:
            self.on_store(sop_uid, keys, data)
        except OSError as exc:
            self.refused += 1
            logger.error("%s: cannot store instance %s: %s", self.name, sop_uid, exc.strerror or exc)
            return OUT_OF_RESOURCES
        except Exception as exc:  # noqa: BLE001 - report as a DIMSE failure to the sender, keep serving
            self.refused += 1
            logger.error("%s: storing instance %s failed: %s: %s", self.name, sop_uid, type(exc).__name__, exc)
            return CANNOT_UNDERSTAND
        self.received += 1
        return 0x0000


def association_keys(event: Any) -> dict[str, str]:
    """The association an instance came on: the caller's and our AE title as the caller named them, its address."""
    assoc = event.assoc
    facts = {"CallingAET": assoc.requestor.ae_title, "CalledAET": assoc.acceptor.ae_title,
             "PeerAddress": assoc.requestor.address}
    return {k: str(v).strip() for k, v in facts.items() if v}


KEY_TAGS = {0x00100020: "PatientID", 0x0020000D: "StudyInstanceUID", 0x0020000E: "SeriesInstanceUID"}


def _header_keys(event: Any, data: bytes) -> dict[str, str]:
    """PatientID, StudyInstanceUID and SeriesInstanceUID of the received dataset (``data``: as a file): from its
    first bytes (``rawkeys``), else parsed by pydicom only up to them."""
    from io import BytesIO

    from pydicom.filereader import read_dataset

    from diana_dimse.rawkeys import text_keys

    found = text_keys(data[:16384], KEY_TAGS, whole=len(data) <= 16384)
    if found is not None:
        return {KEY_TAGS[tag]: value for tag, value in found.items() if value}
    ts = event.context.transfer_syntax
    if ts == "1.2.840.10008.1.2.1.99":  # deflated: let pynetdicom inflate it
        ds = event.dataset
    else:
        stream = event.request.DataSet
        buf = stream if isinstance(stream, BytesIO) else BytesIO(bytes(stream))
        buf.seek(0)
        try:
            ds = read_dataset(buf, is_implicit_VR=ts == "1.2.840.10008.1.2",
                              is_little_endian=ts != "1.2.840.10008.1.2.2",
                              stop_when=lambda tag, vr, length: tag > 0x0020000E)
        finally:
            buf.seek(0)
    keys = {}
    for key in ("PatientID", "StudyInstanceUID", "SeriesInstanceUID"):
        value = ds.get(key)
        if value:
            keys[key] = str(value)
    return keys
