"""The one translator of HTTP / requests / dicomweb-client failures into Diana's typed errors.

Messages name the endpoint, the operation and the HTTP status only: never the URL (a QIDO query string can hold an
accession number or a patient id), never a header (the bearer token), never the server's body (it may echo either).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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
