"""multipart/related bodies of DICOMweb: one STOW-RS request body built from instance bytes, and the parts of a
WADO-RS answer read as they stream in (one part in memory at a time, never the whole study).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator, Sequence

DICOM_MEDIA = "application/dicom"


def stow_body(parts: Sequence[bytes]) -> tuple[bytes, str]:
    """(body, Content-Type) of a STOW-RS request carrying ``parts`` (each a whole DICOM file)."""
    boundary = f"diana-{secrets.token_hex(12)}"
    head = f"--{boundary}\r\nContent-Type: {DICOM_MEDIA}\r\n\r\n".encode()
    pieces: list[bytes] = []
    for part in parts:
        pieces += (head, part, b"\r\n")
    pieces.append(f"--{boundary}--\r\n".encode())
    return b"".join(pieces), f'multipart/related; type="{DICOM_MEDIA}"; boundary={boundary}'


def boundary_of(content_type: str) -> str | None:
    """The boundary parameter of a multipart Content-Type, or None (a non-multipart answer)."""
    media, *params = (p.strip() for p in content_type.split(";"))
    if not media.lower().startswith("multipart/"):
        return None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "boundary":
            return value.strip().strip('"')
    return None


def iter_parts(chunks: Iterable[bytes], boundary: str) -> Iterator[bytes]:
    """The contents of each part of a multipart body arriving as ``chunks`` (headers stripped)."""
    delimiter = b"\r\n--" + boundary.encode()
    buf = bytearray(b"\r\n")  # the first boundary has no CRLF before it: add one so every delimiter looks alike
    start: int | None = None  # where the current part's content begins in buf
    scan = 0
    for chunk in chunks:
        buf += chunk
        while True:
            if start is None:  # looking for a delimiter, then the end of the part headers
                at = buf.find(delimiter, scan)
                if at < 0:
                    scan = max(0, len(buf) - len(delimiter))
                    break
                after = at + len(delimiter)
                if len(buf) < after + 2:
                    scan = at
                    break
                if buf[after:after + 2] == b"--":
                    return  # closing delimiter
                headers_end = buf.find(b"\r\n\r\n", after)
                if headers_end < 0:
                    scan = at
                    break
                del buf[:headers_end + 4]
                start, scan = 0, 0
            else:  # inside a part: its content ends at the next delimiter
                at = buf.find(delimiter, scan)
                if at < 0:
                    scan = max(0, len(buf) - len(delimiter))
                    break
                yield bytes(buf[:at])
                del buf[:at]
                start, scan = None, 0
