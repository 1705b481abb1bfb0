"""HTTPS for tests: a throw-away private CA (openssl command) and a TLS front relaying to a real plain-HTTP server.

Orthanc 1.10.1's own ``SslEnabled`` dies with SIGSEGV on the first TLS handshake against Debian's OpenSSL 3, so an
HTTPS Orthanc in tests is the real Orthanc behind this relay (TLS terminated here, bytes passed through unchanged).
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import threading
from pathlib import Path

from attrs import define


@define(frozen=True)
class PrivateCA:
    """A CA certificate and one server certificate + key it signed (valid for 127.0.0.1 and localhost)."""

    ca_pem: str
    cert_pem: str
    key_pem: str


def make_private_ca(folder: str | os.PathLike[str]) -> PrivateCA:
    """Generate a CA and a server certificate with the openssl command (a fraction of a second)."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    ca_key, ca_pem, key, csr, crt = (out / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.crt"))
    ext = out / "server.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_pem),
            "-days", "2", "-subj", "/CN=Diana test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_pem), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(crt), "-days", "2", "-extfile", str(ext))
    for secret in (ca_key, key):
        secret.chmod(0o600)
    return PrivateCA(ca_pem=str(ca_pem), cert_pem=str(crt), key_pem=str(key))


class TlsFront:
    """Accepts TLS on ``port`` (127.0.0.1) with the CA's server certificate and relays each connection to
    ``backend_port``; ``start()``/``stop()``. Failed handshakes (an untrusting client) are counted, not fatal."""

    def __init__(self, backend_port: int, ca: PrivateCA) -> None:
        self.backend_port = backend_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(ca.cert_pem, ca.key_pem)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.handshake_failures = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def start(self) -> TlsFront:
        self._thread.start()
        return self

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            self.handshake_failures += 1
            conn.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.backend_port))
        back = threading.Thread(target=_pump, args=(upstream, tls), daemon=True)
        back.start()
        _pump(tls, upstream)
        back.join()
        for sock in (tls, upstream):
            sock.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)
