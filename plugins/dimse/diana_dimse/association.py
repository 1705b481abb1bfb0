"""Building pynetdicom application entities: presentation contexts per operation, TLS, and TCP_NODELAY.

Nagle's algorithm delays the small PDUs DIMSE exchanges (command sets, responses) by up to ~40-90 ms each; every
association socket we open or accept turns it off (``nodelay_handlers``).
"""

from __future__ import annotations

import copy
import functools
import logging
import socket
import ssl
from collections.abc import Iterable
from typing import Any

from diana_core.delivery import attempt_budget

# common storage SOP classes offered when we play the SCP role of a C-GET (an association holds at most 128
# presentation contexts, so not all ~150 storage classes fit beside the query/retrieve ones)
COMMON_STORAGE_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.1",  # CR
    "1.2.840.10008.5.1.4.1.1.1.1",  # DX presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # DX processing
    "1.2.840.10008.5.1.4.1.1.1.2",  # MG presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # MG processing
    "1.2.840.10008.5.1.4.1.1.2",  # CT
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT
    "1.2.840.10008.5.1.4.1.1.3.1",  # US multi-frame
    "1.2.840.10008.5.1.4.1.1.4",  # MR
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR
    "1.2.840.10008.5.1.4.1.1.6.1",  # US
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary capture
    "1.2.840.10008.5.1.4.1.1.7.2",  # SC multi-frame grayscale byte
    "1.2.840.10008.5.1.4.1.1.7.4",  # SC multi-frame true color
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale softcopy presentation state
    "1.2.840.10008.5.1.4.1.1.12.1",  # XA
    "1.2.840.10008.5.1.4.1.1.12.2",  # XRF
    "1.2.840.10008.5.1.4.1.1.13.1.3",  # Breast tomosynthesis
    "1.2.840.10008.5.1.4.1.1.20",  # NM
    "1.2.840.10008.5.1.4.1.1.66",  # Raw data
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation
    "1.2.840.10008.5.1.4.1.1.77.1.6",  # VL whole slide microscopy
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.67",  # X-ray radiation dose SR
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.128",  # PET
    "1.2.840.10008.5.1.4.1.1.130",  # Enhanced PET
    "1.2.840.10008.5.1.4.1.1.481.1",  # RT image
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT dose
    "1.2.840.10008.5.1.4.1.1.481.3",  # RT structure set
    "1.2.840.10008.5.1.4.1.1.481.5",  # RT plan
)

UNCOMPRESSED = ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")  # explicit then implicit VR little endian
COMMON_TRANSFER_SYNTAXES = (
    *UNCOMPRESSED,
    "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian (retired, still met)
    "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51",  # JPEG baseline, extended
    "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",  # JPEG lossless, lossless SV1
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81",  # JPEG-LS lossless, near-lossless
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",  # JPEG 2000 lossless, lossy
    "1.2.840.10008.1.2.5",  # RLE lossless
)

STUDY_ROOT = {
    "find": "1.2.840.10008.5.1.4.1.2.2.1", "move": "1.2.840.10008.5.1.4.1.2.2.2", "get": "1.2.840.10008.5.1.4.1.2.2.3",
}
PATIENT_ROOT = {
    "find": "1.2.840.10008.5.1.4.1.2.1.1", "move": "1.2.840.10008.5.1.4.1.2.1.2", "get": "1.2.840.10008.5.1.4.1.2.1.3",
}
VERIFICATION = "1.2.840.10008.1.1"


def _nodelay(event: Any) -> None:
    sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not a TCP socket (never in practice); Nagle then only costs latency
            pass


def nodelay_handlers() -> list[tuple[Any, Any]]:
    """Event handlers that set TCP_NODELAY on every association socket as soon as it connects."""
    from pynetdicom import evt

    return [(evt.EVT_CONN_OPEN, _nodelay)]


class Negotiation:
    """What the network thread saw while one association was negotiated: did the socket connect, and the peer's
    A-ASSOCIATE-RJ PDU if it sent one.

    pynetdicom closes the socket as soon as it receives a reject; when the requesting thread only then looks
    at the socket (a busy CPU delays it), pynetdicom reports an abort and drops the reject. The PDU kept here
    still says what the peer answered.
    """

    def __init__(self) -> None:
        self.connected = False
        self.reject: Any = None  # pynetdicom.pdu.A_ASSOCIATE_RJ

    def handlers(self) -> list[tuple[Any, Any]]:
        """Event handlers for ``AE.associate(evt_handlers=...)``."""
        from pynetdicom import evt

        return [(evt.EVT_CONN_OPEN, self._opened), (evt.EVT_PDU_RECV, self._received)]

    def settled(self, assoc: Any) -> None:
        """Stop looking at PDUs once negotiation is over (an established association receives many)."""
        from pynetdicom import evt

        assoc.unbind(evt.EVT_PDU_RECV, self._received)

    def _opened(self, event: Any) -> None:
        self.connected = True

    def _received(self, event: Any) -> None:
        from pynetdicom.pdu import A_ASSOCIATE_RJ

        if isinstance(event.pdu, A_ASSOCIATE_RJ):
            self.reject = event.pdu


def quiet_library_logs() -> None:
    """pynetdicom logs every refused connection and rejection at ERROR on several lines; our typed errors say
    it in one. Unless the user configured the "pynetdicom" logger, only its critical records pass."""
    lib = logging.getLogger("pynetdicom")
    if lib.level == logging.NOTSET:
        lib.setLevel(logging.CRITICAL)
        from pynetdicom import _config

        # nobody reads them: skip pynetdicom's standard handlers, which format every PDU and DIMSE message for
        # debug logging (~10-15 % of the CPU per C-STORE); a user who sets the logger's level gets them back
        _config.LOG_HANDLER_LEVEL = "none"


def new_ae(ae_title: str, timeout: float, max_pdu: int) -> Any:
    """A pynetdicom AE with our AE title and one timeout for connecting, ACSE, DIMSE and the network (connecting
    and associating within the caller's attempt budget, diana_core.delivery.single_attempt, when it set one)."""
    quiet_library_logs()
    from pynetdicom import AE

    ae = AE(ae_title=ae_title)
    budget = attempt_budget()  # a watcher's single short attempt: connect and associate within it
    ae.connection_timeout = min(timeout, budget) if budget else timeout
    ae.acse_timeout = min(timeout, budget) if budget else timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.maximum_pdu_size = max_pdu
    return ae


def client_tls(host: str, ca: str | None, cert: str | None, key: str | None, verify: bool) -> tuple[ssl.SSLContext, str]:
    """(SSLContext, server hostname) for ``AE.associate(tls_args=...)``."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx, host


def server_tls(cert: str, key: str | None, ca: str | None) -> ssl.SSLContext:
    """An SSLContext for a Store SCP; with ``ca`` the callers must present a certificate it signed."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    ctx.load_cert_chain(cert, key)
    if ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def add_get_contexts(ae: Any, model: str) -> list[Any]:
    """Request the C-GET model plus storage contexts in the SCP role; returns the role negotiation items."""
    from pynetdicom import build_role

    ae.add_requested_context(model)
    roles = []
    for uid in COMMON_STORAGE_CLASSES:
        ae.add_requested_context(uid, list(COMMON_TRANSFER_SYNTAXES))
        roles.append(build_role(uid, scp_role=True))
    return roles


def add_all_storage_contexts(ae: Any) -> None:
    """Accept every storage SOP class pynetdicom knows, in every transfer syntax (we store bytes as sent)."""
    from pynetdicom import ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts

    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(VERIFICATION)


@functools.cache
def _cheap_copy_class() -> type:
    from pynetdicom.presentation import PresentationContext

    class CheapCopyContext(PresentationContext):  # type: ignore[misc]
        """A presentation context whose deep copy shares its (immutable) UIDs instead of rebuilding each one."""

        def __deepcopy__(self, memo: dict[int, Any]) -> CheapCopyContext:
            twin = copy.copy(self)
            twin._transfer_syntax = list(self._transfer_syntax)
            return twin

    return CheapCopyContext


def server_contexts(ae: Any) -> list[Any]:
    """The AE's supported contexts for ``start_server(contexts=...)``, cheap to copy: pynetdicom deep-copies a
    server's contexts for every association it accepts, and with every storage class in every transfer syntax
    (~6,000 UIDs, each re-validated) that copy cost ~0.2 s per association."""
    cls = _cheap_copy_class()
    contexts = []
    for cx in ae.supported_contexts:
        twin = copy.copy(cx)
        twin.__class__ = cls
        contexts.append(twin)
    return contexts


def store_contexts(pairs: Iterable[tuple[str, str]]) -> list[Any]:
    """Presentation contexts for C-STORE from the files' (SOP class, transfer syntax): one per pair with the
    file's own syntax only (so it is sent as is), plus, for uncompressed data, a fallback context with the other
    little-endian syntax (used only when the peer refuses the exact one; pynetdicom prefers exact matches)."""
    from pynetdicom import build_context

    pairs = set(pairs)
    contexts: list[Any] = []
    fallbacks: dict[str, set[str]] = {}
    for sop_class, ts in sorted(pairs):
        contexts.append(build_context(sop_class, [ts]))
        if ts in UNCOMPRESSED:
            fallbacks.setdefault(sop_class, set()).update(u for u in UNCOMPRESSED if u != ts)
    for sop_class, syntaxes in sorted(fallbacks.items()):
        extra = sorted(syntaxes - {ts for s, ts in pairs if s == sop_class})
        if extra:
            contexts.append(build_context(sop_class, extra))
    return contexts
