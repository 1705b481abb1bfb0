"""C-STORE SCU: one association reused for many instances; presentation contexts come from the files' own
(SOP class, transfer syntax) pairs, and the association is renewed only when an instance needs a context the
current one lacks. Datasets are sent in their own transfer syntax (no conversion unless the peer asks for it).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterable
from typing import Any

from diana_core.errors import DianaError, EndpointUnavailable
from diana_core.ports import BulkResult, Progress
from diana_dimse import association as an
from diana_dimse.errors import DimseStatusError
from diana_dimse.files import Payload, all_payloads, payloads

logger = logging.getLogger(__name__)

MAX_CONTEXTS = 64  # (SOP class, syntax) pairs per association: each may add a fallback context, 128 at most
LOOKAHEAD = 32  # instances read ahead to learn the contexts one association needs


def _pair(ds: Any) -> tuple[str, str]:
    return str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)


class Storer:
    """Sends datasets to a DicomNode over one association (context manager)."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.assoc: Any = None
        self.requested: set[tuple[str, str]] = set()
        self.accepted: set[tuple[str, str]] = set()
        self.dead: EndpointUnavailable | None = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> Storer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def release(self) -> None:
        self._stack.close()
        self._stack = contextlib.ExitStack()
        self.assoc = None

    def _covered(self, pair: tuple[str, str]) -> bool:
        sop, ts = pair
        if pair in self.accepted:
            return True
        # uncompressed data converts between explicit and implicit little endian
        return ts in an.UNCOMPRESSED and any(s == sop and t in an.UNCOMPRESSED for s, t in self.accepted)

    def ensure(self, pairs: set[tuple[str, str]]) -> None:
        """An association whose accepted contexts cover ``pairs`` (renewed with their union if not)."""
        if self.dead is not None:
            raise self.dead
        if self.assoc is not None and self.assoc.is_established and all(self._covered(p) for p in pairs):
            return
        if self.assoc is not None and self.assoc.is_established and pairs <= self.requested:
            return  # asked before and refused: send() reports it per instance
        self.release()
        wanted = self.requested | pairs
        if len(wanted) > MAX_CONTEXTS:
            wanted = set(pairs)
        ae = an.new_ae(self.node.calling_aet, self.node.timeout, self.node.max_pdu)
        for cx in an.store_contexts(wanted):
            ae.add_requested_context(cx.abstract_syntax, cx.transfer_syntax)
        try:
            self.assoc = self._stack.enter_context(self.node.association("C-STORE", ae=ae))
        except EndpointUnavailable as exc:
            self.dead = exc
            raise
        self.requested = wanted
        self.accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in self.assoc.accepted_contexts}

    def send_dataset(self, ds: Any) -> str:
        """C-STORE one dataset; returns its SOP Instance UID; DimseStatusError/EndpointUnavailable on failure."""
        pair, sop_uid = _pair(ds), str(ds.SOPInstanceUID)
        self.ensure({pair})
        errs = self.node.errors
        if not self._covered(pair):
            raise DimseStatusError(f"{errs.where}: C-STORE of instance {sop_uid}: the node accepts no presentation "
                                   f"context for SOP class {pair[0]} in transfer syntax {pair[1]}", 0x0122)
        with errs.translate(f"C-STORE of instance {sop_uid}"):
            status = self.assoc.send_c_store(ds)
        if not self.assoc.is_established:
            self.release()  # aborted: the next instance opens a new association
        code = errs.status("C-STORE", f"of instance {sop_uid}", status)
        if code != 0x0000:
            logger.warning("%s: C-STORE of instance %s: warning status 0x%04X", self.node.name, sop_uid, code)
        return sop_uid

    def send(self, payload: Payload) -> str:
        return self.send_dataset(payload.dataset())


def store_many(node: Any, items: Iterable[Any], progress: Progress | None = None) -> BulkResult:
    """C-STORE every instance of ``items`` (see ``files.payloads``); per-instance failures are collected."""
    done, failed = 0, []
    stream = all_payloads(items)
    with Storer(node) as storer:
        while True:
            chunk = list(itertools.islice(stream, LOOKAHEAD))
            if not chunk:
                break
            ready: list[tuple[Payload, Any]] = []
            for payload in chunk:
                try:
                    ready.append((payload, payload.dataset()))
                except DianaError as exc:
                    failed.append((payload.label, str(exc)))
            pairs = {_pair(ds) for _, ds in ready}
            try:
                if pairs:
                    storer.ensure(pairs)
            except DianaError:
                pass  # reported per instance below (EndpointUnavailable once the node cannot be reached)
            for payload, ds in ready:
                try:
                    storer.send_dataset(ds)
                    done += 1
                except DianaError as exc:
                    failed.append((payload.label, str(exc)))
                if progress:
                    progress(done + len(failed), None)
    if failed:
        logger.warning("%s: C-STORE: %d stored, %d failed", node.name, done, len(failed))
    else:
        logger.info("%s: C-STORE: %d stored", node.name, done)
    return BulkResult(done=done, failed=failed)


__all__ = ["Storer", "payloads", "store_many"]
