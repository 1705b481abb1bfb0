"""Typed errors for all of Diana: one hierarchy, raised where the fact is known.

Messages name the endpoint and the item id (an Orthanc id, a file name or a row number), never PHI.
"""

from __future__ import annotations


class DianaError(Exception):
    """Base of every error Diana raises on purpose."""


class ConfigError(DianaError, ValueError):
    """A service file, an option or a parameter is wrong; the message names the service and the key."""


class ValidationError(DianaError, ValueError):
    """An input value is unusable (e.g. no birth date and no age for a pseudonym)."""


class PluginError(DianaError):
    """A plugin is broken, or two plugins claim the same ctype or handler name."""


class EndpointUnavailable(DianaError):
    """The endpoint could not be reached (connection refused, timeout, 5xx after retries).

    ``reason``, when known, is the short why ("connection refused", "DNS lookup of pacs failed", a TLS failure).
    """

    def __init__(self, message: str = "", reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason


class AuthenticationError(EndpointUnavailable):
    """The endpoint refused our credentials (HTTP 401/403, Redis AUTH); never carries the password."""


class NotFound(DianaError, KeyError):
    """The endpoint answered, and the item is not there."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "not found"


class NotSupportedError(DianaError, NotImplementedError):
    """The endpoint does not implement this operation."""


class InvalidDicom(DianaError, ValueError):
    """A file or byte string is not readable DICOM; the message names the file."""


class JobError(DianaError):
    """A use case (collector, indexer, watcher) could not go on; partial results are kept."""


class ArchiveRefused(InvalidDicom):
    """A zip archive breaks a safety limit (member size, total size, compression ratio, member count, nesting)."""


class IncompleteStudy(JobError):
    """A study arrived short: the destination holds fewer instances than the source reported or sent."""


class JobLocked(JobError):
    """Another process holds the job folder's lock (the message names the folder and that process's pid)."""


def is_transient(exc: BaseException) -> bool:
    """True for a failure worth retrying (an endpoint unreachable or overloaded, a short transfer, an I/O hiccup);
    False for programming errors, bad data, bad configuration, refused credentials and missing items."""
    if isinstance(exc, AuthenticationError):
        return False
    if isinstance(exc, (EndpointUnavailable, IncompleteStudy, TimeoutError, ConnectionError)):
        return True
    if isinstance(exc, DianaError):
        return False
    return isinstance(exc, OSError) and not isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError,
                                                             NotADirectoryError))
