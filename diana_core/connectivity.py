"""Why a network call failed, in a few words: connection refused, DNS, TLS, timeout (no library imports).

Backends wrap low-level errors (requests -> urllib3 -> socket/ssl); this walks the chain of causes and wrapped
``reason`` attributes to the stdlib error at the bottom, so every translator can say the same thing the same way.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nxt in (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args):
            if isinstance(nxt, BaseException):
                todo.append(nxt)


def why_unreachable(exc: BaseException, host: str | None = None) -> str:
    """One phrase for a failed connection: "connection refused", "DNS lookup of X failed", "TLS certificate not
    trusted (...)", "timed out"; the exception's class name when nothing more specific is known."""
    text = " ".join(f"{type(e).__name__}: {e}" for e in _chain(exc))
    for err in _chain(exc):
        if isinstance(err, ssl.SSLCertVerificationError):
            detail = err.verify_message or "verify failed"
            return f"TLS certificate not trusted ({detail}); give verify: /path/to/ca.pem for a private CA"
        if isinstance(err, ssl.SSLError):
            return f"TLS handshake failed ({err.reason or err})"
        if isinstance(err, socket.gaierror):
            return f"DNS lookup of {host or 'the host'} failed"
        if isinstance(err, ConnectionRefusedError):
            return "connection refused (is the server running on that port?)"
        if isinstance(err, (TimeoutError, socket.timeout)):
            return "timed out"
    for marker, phrase in (("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted; give verify: /path/to/ca.pem"),
                           ("Name or service not known", f"DNS lookup of {host or 'the host'} failed"),
                           ("Temporary failure in name resolution", f"DNS lookup of {host or 'the host'} failed"),
                           ("Connection refused", "connection refused (is the server running on that port?)"),
                           ("timed out", "timed out")):
        if marker in text:
            return phrase
    return type(exc).__name__
