"""C-STORE SCU: one association reused for many instances; presentation contexts come from the files' own
(SOP class, transfer syntax) pairs, and the association is renewed only when an instance needs a context the
current one lacks. Datasets are sent in their own transfer syntax (no conversion unless the peer asks for it).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from diana_core.errors import DianaError, EndpointUnavailable
from diana_core.ports import BulkResult, Progress
from diana_dimse import association as an
from diana_dimse.errors import DimseStatusError, NodeBusy
from diana_dimse.files import Payload, all_payloads, payloads

logger = logging.getLogger(__name__)

MAX_CONTEXTS = 64  # (SOP class, syntax) pairs per association: each may add a fallback context, 128 at most
LOOKAHEAD = 32  # instances read ahead to learn the contexts one association needs
BUSY_PATIENCE = 15.0  # seconds the last sender keeps asking a node that rejects it as busy
PARALLEL_CHUNK = 4  # instances a thread takes at a time when several associations share the work


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

    def ensure(self, pairs: set[tuple[str, str]], patience: float = 0.0) -> None:
        """An association whose accepted contexts cover ``pairs`` (renewed with their union if not); a node that
        rejects it as busy is asked again for up to ``patience`` seconds (backing off)."""
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
            self.assoc = self._associate(ae, patience)
        except NodeBusy as exc:
            if patience > 0:  # waited for it in vain: the rest fails fast
                self.dead = exc
            raise
        except EndpointUnavailable as exc:
            self.dead = exc
            raise
        self.requested = wanted
        self.accepted = {(cx.abstract_syntax, cx.transfer_syntax[0]) for cx in self.assoc.accepted_contexts}

    def _associate(self, ae: Any, patience: float) -> Any:
        delay, deadline = 0.1, time.monotonic() + patience
        while True:
            try:
                return self._stack.enter_context(self.node.association("C-STORE", ae=ae))
            except NodeBusy:
                if time.monotonic() + delay > deadline:
                    raise
                logger.debug("%s: C-STORE: the node is busy; asking again in %.1f s", self.node.name, delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def send_ready(self, item: Ready) -> str:
        """C-STORE one prepared instance: a file whose exact syntax was accepted goes out as stored (read in
        PDU-sized chunks, never decoded); anything else is sent from its dataset (converted if need be).
        An instance that got no answer (association dropped, or no response within the timeout) is sent once
        more on a new association: storing an instance again is harmless (same SOP Instance UID)."""
        for attempt in (1, 2):
            try:
                return self._store(item)
            except EndpointUnavailable as exc:
                if attempt == 2 or self.dead is not None or isinstance(exc, DimseStatusError):
                    raise  # an answer (out of resources) is not a lost one: not sent again at once
                logger.info("%s: C-STORE of instance %s got no answer; sending it again on a new association",
                            self.node.name, item.sop_uid)
                self.drop()
        raise AssertionError("unreachable")

    def drop(self) -> None:
        """Abort the current association (it may be stuck waiting for an answer) and forget it."""
        if self.assoc is not None and self.assoc.is_established:
            with contextlib.suppress(Exception):
                self.assoc.abort()
        self.release()

    def _store(self, item: Ready) -> str:
        pair, sop_uid = item.pair, item.sop_uid
        self.ensure({pair})
        errs = self.node.errors
        if not self._covered(pair):
            raise DimseStatusError(f"{errs.where}: C-STORE of instance {sop_uid}: the node accepts no presentation "
                                   f"context for SOP class {pair[0]} in transfer syntax {pair[1]}", 0x0122)
        source: Any = item.ds
        if source is None:
            assert item.payload is not None and item.payload.path is not None
            if pair in self.accepted:
                _send_files_as_stored()
                source = Path(item.payload.path)
            else:  # only the other little-endian syntax was accepted: pynetdicom converts the dataset
                source = item.payload.dataset()
        with errs.translate(f"C-STORE of instance {sop_uid}"):
            status = self.assoc.send_c_store(source)
        if not self.assoc.is_established:
            self.release()  # aborted: the next instance opens a new association
        code = errs.status("C-STORE", f"of instance {sop_uid}", status)
        if code != 0x0000:
            logger.warning("%s: C-STORE of instance %s: warning status 0x%04X", self.node.name, sop_uid, code)
        return sop_uid

    def send(self, payload: Payload) -> str:
        return self.send_ready(prepare(payload))


class Ready:
    """One instance about to be sent: its (SOP class, syntax) pair, its UID, and its dataset unless it is a file
    that can go out as stored."""

    __slots__ = ("ds", "pair", "payload", "sop_uid")

    def __init__(self, payload: Payload | None, pair: tuple[str, str], sop_uid: str, ds: Any) -> None:
        self.payload, self.pair, self.sop_uid, self.ds = payload, pair, sop_uid, ds


def prepare(payload: Payload) -> Ready:
    """A file is known by its meta information alone; bytes (and odd files) are read into a dataset.
    InvalidDicom names the payload when it is not DICOM."""
    head = payload.header()
    if head is not None:
        return Ready(payload, (head[0], head[2]), head[1], None)
    ds = payload.dataset()
    return Ready(payload, _pair(ds), str(ds.SOPInstanceUID), ds)


@functools.cache
def _send_files_as_stored() -> None:
    """pynetdicom's documented switch: ``send_c_store(path)`` streams the file's dataset bytes in PDU-sized
    chunks instead of decoding and re-encoding the whole dataset (~2 decode/encode passes of 0.5 MB per CT
    instance). It only changes calls given a path, which only ``Storer.send_ready`` makes, with an exact context."""
    from pynetdicom import _config

    _config.STORE_SEND_CHUNKED_DATASET = True


class _Work:
    """The payload stream shared by the sending threads, chunks handed back by a thread that could not
    associate, and the tally (with the caller's progress callback, called under the lock)."""

    def __init__(self, items: Iterable[Any], chunk: int, progress: Progress | None) -> None:
        self.stream = all_payloads(items)
        self.chunk, self.progress = chunk, progress
        self.returned: list[list[Payload]] = []
        self.done = 0
        self.failed: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.active = 0  # threads still sending

    def take(self) -> list[Payload]:
        """The next chunk; an empty one means the work is done and counts the calling thread out (under the
        lock that ``hand_back`` takes, so a chunk is never handed back to threads that all left)."""
        with self.lock:
            if self.returned:
                return self.returned.pop()
            chunk = list(itertools.islice(self.stream, self.chunk))
            if not chunk:
                self.active -= 1
            return chunk

    def hand_back(self, ready: list[Ready]) -> bool:
        """Give a chunk back for the other threads (True), unless this is the last thread sending (False)."""
        with self.lock:
            if self.active <= 1:
                return False
            self.returned.append([item.payload for item in ready if item.payload is not None])
            self.active -= 1
            return True

    def count(self, ok: bool, label: str = "", why: str = "") -> None:
        with self.lock:
            if ok:
                self.done += 1
            else:
                self.failed.append((label, why))
            if self.progress:
                self.progress(self.done + len(self.failed), None)


def _sender(node: Any, work: _Work) -> None:
    """One association's loop: take a chunk, learn its contexts, send it. A thread that cannot associate before
    it sent anything hands its chunk back and stops while another thread is still sending (the node may allow
    fewer associations than workers); the last one reports the failures."""
    sent, counted_out = False, False
    try:
        with Storer(node) as storer:
            while True:
                chunk = work.take()
                if not chunk:
                    counted_out = True
                    return
                ready: list[Ready] = []
                for payload in chunk:
                    try:
                        ready.append(prepare(payload))
                    except DianaError as exc:
                        work.count(False, payload.label, str(exc))
                pairs = {item.pair for item in ready}
                try:
                    if pairs:
                        storer.ensure(pairs)
                except DianaError as exc:
                    if not sent and storer.assoc is None and work.hand_back(ready):
                        counted_out = True
                        logger.debug("%s: C-STORE: an extra association was refused", node.name)
                        return
                    if isinstance(exc, NodeBusy):  # the last sender waits for the node to accept it
                        with contextlib.suppress(DianaError):
                            storer.ensure(pairs, patience=BUSY_PATIENCE)
                    # otherwise reported per instance below (EndpointUnavailable once the node cannot be reached)
                sent = True
                for item in ready:
                    try:
                        storer.send_ready(item)
                        work.count(True)
                    except DianaError as exc:
                        assert item.payload is not None
                        work.count(False, item.payload.label, str(exc))
    finally:
        if not counted_out:  # an exception: count it out here
            with work.lock:
                work.active -= 1


def store_many(node: Any, items: Iterable[Any], progress: Progress | None = None, workers: int = 1) -> BulkResult:
    """C-STORE every instance of ``items`` (see ``files.payloads``) over ``workers`` associations at once;
    per-instance failures are collected."""
    workers = max(1, int(workers))
    work = _Work(items, LOOKAHEAD if workers == 1 else PARALLEL_CHUNK, progress)
    work.active = workers
    if workers == 1:
        _sender(node, work)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix=f"c-store-{node.name}") as pool:
            for future in [pool.submit(_sender, node, work) for _ in range(workers)]:
                future.result()
    done, failed = work.done, work.failed
    if failed:
        logger.warning("%s: C-STORE: %d stored, %d failed", node.name, done, len(failed))
    else:
        logger.info("%s: C-STORE: %d stored", node.name, done)
    return BulkResult(done=done, failed=failed)


__all__ = ["Storer", "payloads", "store_many"]
