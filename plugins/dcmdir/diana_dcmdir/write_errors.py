"""A DcmDir write that failed, as one typed line naming the folder and the file: errors that may clear by
themselves (a full disk, a busy or stale share) are transient, the others (read-only, not permitted, a file where a
folder should be) are configuration errors a retry does not change."""

from __future__ import annotations

import errno
import os

from diana_core.errors import ConfigError, DianaError, EndpointUnavailable

MAY_CLEAR = frozenset(getattr(errno, name) for name in (
    "ENOSPC", "EDQUOT", "EIO", "EAGAIN", "EBUSY", "ETIMEDOUT", "ENOMEM", "EMFILE", "ENFILE", "ESTALE", "EINTR",
    "ENOENT") if hasattr(errno, name))
"""Write errors that may clear by themselves (a full disk, a busy or stale network share): worth retrying."""


def unwritable(name: str, folder: str, what: str, fn: str, exc: OSError) -> DianaError:
    """A failed write as one line naming the folder and the file: a full disk may clear (transient), a folder
    we may not write to will not until someone changes it (not worth retrying, as ``is_transient`` says)."""
    why = exc.strerror or type(exc).__name__
    text = f"DcmDir {name!r}: cannot {what} {os.path.basename(fn)} in {folder}: {why}"
    if exc.errno in MAY_CLEAR:
        return EndpointUnavailable(text, reason=why)
    # read-only, not permitted, a file where a folder should be, a name too long: nothing a retry changes
    return ConfigError(f"{text} (path must be a folder Diana may write to)")
