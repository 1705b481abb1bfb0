"""The one translator of HTTP / requests / dicomweb-client failures into Diana's typed errors.

Messages name the endpoint, the operation and the HTTP status only: never the URL (a QIDO query string can hold an
accession number or a patient id), never a header (the bearer token), never the server's body (it may echo either)
beyond the first bytes of an answer that is not DICOMweb at all (an SSO login page), with every digit masked.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from diana_core.errors import (
    AuthenticationError,
    DianaError,
    EndpointUnavailable,
    NotFound,
    NotSupportedError,
    ValidationError,
)
from diana_core.ports import BulkResult


class StowError(DianaError):
    """A STOW-RS request stored only part of what was sent; ``result`` holds the counts and the failed SOP UIDs."""

    def __init__(self, message: str, result: BulkResult) -> None:
        super().__init__(message)
        self.result = result


class UnexpectedResponse(DianaError):
    """The server answered with something DICOMweb does not allow there (an HTML page, a redirect, no body): often
    an SSO or reverse proxy in front of the archive. Never counted as success, nor as an empty result."""


def _head(content: bytes, limit: int = 60) -> str:
    """The first bytes of a body, printable, whitespace collapsed, digits masked (ids and dates are digits)."""
    text = re.sub(r"\s+", " ", content[: limit * 4].decode("utf-8", "replace")).strip()
    text = re.sub(r"[0-9]", "#", text)
    return "".join(c if c.isprintable() else "?" for c in text)[:limit]


def unexpected(where: str, what: str, response: Any, wanted: str) -> UnexpectedResponse:
    """The error for an answer that is not ``wanted``: status, content type and the body's first bytes (sanitized)."""
    status = int(getattr(response, "status_code", 0))
    kind = (response.headers.get("Content-Type") or "no content type").split(";")[0].strip()
    if 300 <= status < 400:
        kind = f"a redirect ({kind}; an SSO or proxy login in front of the archive?)"
    head = _head(getattr(response, "content", b"") or b"")
    body = f"body starting {head!r}" if head else "empty body"
    return UnexpectedResponse(f"{where}: {what}: the server answered HTTP {status} {kind}, {body}; not {wanted}")


def media_type(response: Any) -> str:
    """The answer's media type, lower case, without parameters ("" when none)."""
    return str(response.headers.get("Content-Type") or "").split(";")[0].strip().lower()


def require_json(response: Any, where: str, what: str) -> Any:
    """The DICOM JSON an answer carries; UnexpectedResponse for a redirect, an HTML page or anything not JSON."""
    wanted = "DICOM JSON (application/dicom+json)"
    if not 200 <= response.status_code < 300 or media_type(response) not in ("application/dicom+json",
                                                                              "application/json"):
        raise unexpected(where, what, response, wanted)
    try:
        return response.json()
    except ValueError:
        raise unexpected(where, what, response, wanted) from None


def http_error(where: str, what: str, status: int) -> DianaError:
    """The typed error for an HTTP status answered to ``what``."""
    if status in (401, 403):
        return AuthenticationError(f"{where} refused our credentials ({what}): HTTP {status}")
    if status == 404:
        return NotFound(f"{where}: {what}: not found (HTTP 404)")
    if status in (405, 501):
        return NotSupportedError(f"{where} does not support {what} (HTTP {status})")
    if status in (408, 429, 502, 503, 504):
        return EndpointUnavailable(f"{where} is unavailable ({what}): HTTP {status}")
    if status in (400, 406, 409, 413, 415):
        return ValidationError(f"{where} rejected {what}: HTTP {status}")
    if status >= 500:
        return EndpointUnavailable(f"{where} failed ({what}): HTTP {status}")
    return DianaError(f"{where}: {what} failed: HTTP {status}")


@contextlib.contextmanager
def translated(where: str, what: str) -> Iterator[None]:
    """Translate requests / dicomweb-client exceptions raised inside the block into typed Diana errors."""
    import requests

    try:
        yield
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        raise http_error(where, what, status) from None
    except requests.exceptions.SSLError:
        raise EndpointUnavailable(f"{where}: TLS verification failed ({what}); set verify to the path of your CA "
                                  "bundle") from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise EndpointUnavailable(f"{where} is unavailable ({what}): {type(exc).__name__}") from None
    except requests.RequestException as exc:
        raise DianaError(f"{where}: {what} failed: {type(exc).__name__}") from None
