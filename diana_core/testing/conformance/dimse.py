"""DIMSE faults for the kit's ``FaultProxy``: it reads DICOM upper-layer PDUs (PS3.8 9.3: type, reserved, 4-byte
length) and misbehaves at the association or message level - an A-ASSOCIATE-RJ, an A-ABORT once a dataset has
started to flow, or an association that never answers a request. No DICOM library: the framing is 6 bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Callable

DIMSE_FAULTS = ("assoc_reject", "abort_mid_transfer", "no_response")

A_ASSOCIATE_RJ = bytes([0x03, 0, 0, 0, 0, 4, 0, 0x01, 0x01, 0x01])  # permanent, by the service user, no reason
A_ABORT = bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 0x02, 0x00])  # by the service provider (the "network")
P_DATA_TF = 0x04


async def read_pdu(reader: asyncio.StreamReader) -> bytes:
    """One whole PDU (header included); IncompleteReadError at the end of the stream."""
    head = await reader.readexactly(6)
    (length,) = struct.unpack(">I", head[2:6])
    return head + await reader.readexactly(length)


def dataset_fragments(pdu: bytes) -> list[bool]:
    """For each dataset PDV of a P-DATA-TF PDU, whether it is the message's last fragment (commands skipped)."""
    out, at = [], 6
    while pdu[0] == P_DATA_TF and at + 6 <= len(pdu):
        (length,) = struct.unpack(">I", pdu[at:at + 4])
        control = pdu[at + 5]
        if not control & 0x01:  # bit 0 clear: a dataset fragment, not a command
            out.append(bool(control & 0x02))
        at += 4 + length
    return out


async def _relay(src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                 keep: Callable[[bytes], bool | None] = lambda pdu: True) -> None:
    """Copy PDUs from ``src`` to ``dst``; ``keep`` says forward (True), swallow (False) or stop here (None)."""
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        while True:
            pdu = await read_pdu(src)
            verdict = keep(pdu)
            if verdict is None:
                return
            if verdict:
                dst.write(pdu)
                await dst.drain()


async def dimse_fault(fault: str, upstream: tuple[str, int | None], reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter, stopped: asyncio.Event) -> None:
    """Serve one connection under a DIMSE fault (one of ``DIMSE_FAULTS``)."""
    if fault == "assoc_reject":
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await read_pdu(reader)  # the A-ASSOCIATE-RQ
            writer.write(A_ASSOCIATE_RJ)
            await writer.drain()
        writer.close()
        return
    host, port = upstream
    if port is None:
        raise ConnectionError("no upstream")
    up_reader, up_writer = await asyncio.open_connection(host, port)
    aborted = asyncio.Event()

    def client_pdu(pdu: bytes) -> bool | None:
        fragments = dataset_fragments(pdu)
        if fault == "no_response":
            return not fragments and pdu[0] != P_DATA_TF  # the association goes through; no request arrives
        if not fragments:
            return True
        if any(fragments):  # this PDU would complete a dataset: abort before it gets there
            aborted.set()
            return None
        up_writer.write(pdu)  # a first part of the dataset reaches the server, then the abort
        aborted.set()
        return None

    client = asyncio.ensure_future(_relay(reader, up_writer, client_pdu))
    server = asyncio.ensure_future(_relay(up_reader, writer))
    done = asyncio.ensure_future(aborted.wait())
    halt = asyncio.ensure_future(stopped.wait())
    await asyncio.wait({client, server, done, halt}, return_when=asyncio.FIRST_COMPLETED)
    if aborted.is_set():
        for w in (writer, up_writer):
            with contextlib.suppress(ConnectionError, RuntimeError):
                w.write(A_ABORT)
                await w.drain()
    for task in (client, server, done, halt):
        task.cancel()
    for w in (writer, up_writer):
        w.close()
