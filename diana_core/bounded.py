"""Bounded reads of HTTP answers: the one place every HTTP backend reads a body through, so that a runaway or
hostile answer (a 2 GiB body, announced or streamed) is refused instead of exhausting memory.

Duck-typed on what ``requests`` answers with a ``stream=True`` request (``headers``, ``iter_content``, ``close``):
the core imports no HTTP library."""

from __future__ import annotations

from typing import Any

from diana_core.errors import EndpointUnavailable

MAX_ANSWER = 256 * 2**20
"""Default limit: a QIDO or search page, a STOW or HEC answer larger than this is not an answer we can use."""
CHUNK = 2**20


def read_bounded(response: Any, where: str, what: str, limit: int = MAX_ANSWER) -> bytes:
    """The body of a ``stream=True`` response, refused (EndpointUnavailable naming ``where`` and ``what``) past
    ``limit`` bytes, announced or not. The body is kept on the response as requests keeps a whole read, so
    ``.content``/``.json()`` work afterwards."""
    announced = int(response.headers.get("Content-Length") or 0)
    if announced > limit:
        response.close()
        raise EndpointUnavailable(f"{where}: refused a {announced / 2**20:.0f} MiB answer to {what} "
                                  f"(limit {limit / 2**20:.0f} MiB)")
    body = bytearray()
    for chunk in response.iter_content(CHUNK):
        body += chunk
        if len(body) > limit:
            response.close()
            raise EndpointUnavailable(f"{where}: the answer to {what} exceeds {limit / 2**20:.0f} MiB; refused")
    content = bytes(body)
    response._content = content
    return content
