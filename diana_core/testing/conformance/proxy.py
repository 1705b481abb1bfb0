"""A small asyncio TCP fault proxy: sits between an endpoint and its server and misbehaves on demand.

One listening socket on 127.0.0.1, served from a daemon thread; ``proxy.fault`` picks what the next connections get
(pass through, resets, a stall, canned HTTP answers: a login page, 401/403/404, Retry-After, a huge body, broken
JSON; DIMSE faults from ``dimse``: A-ASSOCIATE-RJ, an abort mid-transfer, no response). Written for the kit because no maintained Python fault proxy is packaged for Debian or PyPI here.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Awaitable, Callable

from diana_core.testing.conformance.dimse import DIMSE_FAULTS, dimse_fault

HUGE_CLAIMED = 2 * 2**30  # the Content-Length the "huge" fault announces
HUGE_SENT = 64 * 2**20  # what it really sends before hanging up: enough to see a client read it whole

FAULTS = ("pass", "reset_request", "reset_response", "stall", "html_login", "http_401", "http_403", "http_404",
          "retry_after_429", "retry_after_503", "huge_body", "malformed_json", *DIMSE_FAULTS)


def _http(status: str, body: bytes, content_type: str, extra: str = "") -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n{extra}"
            "Connection: close\r\n\r\n")
    return head.encode() + body


CANNED = {
    "html_login": _http("200 OK", b"<!DOCTYPE html><html><body><form action='/login'>Sign in</form></body></html>",
                        "text/html; charset=utf-8"),
    "http_401": _http("401 Unauthorized", b'{"error": "unauthorized"}', "application/json",
                      'WWW-Authenticate: Basic realm="conformance"\r\n'),
    "http_403": _http("403 Forbidden", b'{"error": "forbidden"}', "application/json"),
    "http_404": _http("404 Not Found", b"<html><body>Not Found</body></html>", "text/html"),
    "malformed_json": _http("200 OK", b'{"ID": "abc", "Status": "Succ', "application/json"),
}


def _abort_with_rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a crashed server or a middlebox does."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _read_request_head(reader: asyncio.StreamReader) -> bytes:
    with contextlib.suppress(asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return await reader.readuntil(b"\r\n\r\n")
    return b""


class FaultProxy:
    """``FaultProxy(upstream_host, upstream_port)``; ``start()`` -> (host, port) to point the endpoint at."""

    def __init__(self, upstream_host: str = "127.0.0.1", upstream_port: int | None = None,
                 retry_after: int = 1) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.retry_after = retry_after
        self.fault = "pass"
        self.connections = 0  # connections accepted since the last ``set``
        self._answered_retry = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self.address: tuple[str, int] = ("127.0.0.1", 0)

    def set(self, fault: str) -> None:
        """Choose what the next connections get (one of ``FAULTS``)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        self.fault, self.connections, self._answered_retry = fault, 0, False

    # --- life cycle -----------------------------------------------------------------------------------
    def start(self) -> tuple[str, int]:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="fault-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fault proxy did not start within 10 s")
        return self.address

    def _run(self, ready: threading.Event) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
            self.address = self._server.sockets[0].getsockname()[:2]
            ready.set()
            async with self._server:
                await self._stop.wait()

        asyncio.run(main())

    def stop(self) -> None:
        """Stop serving (stalled connections are dropped); safe to call twice."""
        if self._loop is not None and self._stop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)
            self._loop = None

    def __enter__(self) -> FaultProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- one connection -------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        fault = self.fault
        if fault in ("retry_after_429", "retry_after_503"):
            if not self._answered_retry:
                self._answered_retry = True
                await _read_request_head(reader)
                status = "429 Too Many Requests" if fault.endswith("429") else "503 Service Unavailable"
                writer.write(_http(status, b"busy", "text/plain", f"Retry-After: {self.retry_after}\r\n"))
                await self._close(writer)
                return
            fault = "pass"
        handler: dict[str, Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]] = {
            "pass": self._pass, "reset_request": self._reset_request, "reset_response": self._reset_response,
            "stall": self._stall, "huge_body": self._huge,
        }
        try:
            if fault in DIMSE_FAULTS:
                assert self._stop is not None
                await dimse_fault(fault, self.upstream, reader, writer, self._stop)
            elif fault in CANNED:
                await _read_request_head(reader)
                writer.write(CANNED[fault])
                await self._close(writer)
            else:
                await handler[fault](reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            writer.transport.abort()

    @staticmethod
    async def _close(writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await writer.drain()
            writer.close()
            await writer.wait_closed()

    async def _reset_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read(64)  # the request has started arriving: drop it half way
        _abort_with_rst(writer)

    async def _reset_response(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                     b'{"ID": "0000", "Status": "Success", "Path": "')
        await writer.drain()
        await asyncio.sleep(0.05)
        _abort_with_rst(writer)

    async def _stall(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._stop is not None
        await _read_request_head(reader)
        await self._stop.wait()  # never answer; the client must give up by its own timeout
        writer.transport.abort()

    async def _huge(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request_head(reader)
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE_CLAIMED}\r\n"
                     "\r\n[".encode())
        chunk = b"0," * 2**15
        sent = 0
        while sent < HUGE_SENT:
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
        _abort_with_rst(writer)

    async def _pass(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = self.upstream
        if port is None:
            raise ConnectionError("no upstream")
        up_reader, up_writer = await asyncio.open_connection(host, port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError):
                while data := await src.read(2**16):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(OSError):
                dst.write_eof()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        for w in (writer, up_writer):
            w.close()


def closed_port() -> tuple[str, int]:
    """An address where nothing listens right now (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return "127.0.0.1", int(sock.getsockname()[1])
