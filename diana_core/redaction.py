"""What Diana may show of an identifier (a file name, a path, a worklist key) in logs, status pages and notifications.

File names often carry PHI (``DOE_JANE_ACC123.dcm``). Unless the process runs with ``--show-ids``, such an identifier
is shown as a short keyed hash (``id:3f2a9c41d0``): equal names give equal hashes within a project (the key is
derived from the pseudonym key when there is one, else random per process), and nobody without the key can test
guesses against it. The CLI calls ``configure`` once at start.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

_state: dict[str, object] = {"show": False, "key": secrets.token_bytes(32)}


def configure(show_ids: bool, key: str | bytes | None = None) -> None:
    """Show identifiers as they are (``show_ids``) or hashed with ``key`` (random when None)."""
    raw = key.encode("utf-8") if isinstance(key, str) else key
    _state["show"] = bool(show_ids)
    _state["key"] = hashlib.sha256(b"diana-shown-id\0" + raw).digest() if raw else secrets.token_bytes(32)


def show_ids(on: bool = True) -> None:
    """Switch ``--show-ids`` on (given after a command's name), keeping the hash key."""
    _state["show"] = bool(on)


def showing_ids() -> bool:
    """True when the process was started with ``--show-ids``."""
    return bool(_state["show"])


def hashed(identifier: str) -> str:
    """The keyed hash Diana shows in place of ``identifier`` (always hashed, whatever ``--show-ids`` says)."""
    key = _state["key"]
    assert isinstance(key, bytes)
    return "id:" + hmac.new(key, identifier.encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:10]


def shown(identifier: str | os.PathLike[str]) -> str:
    """A path or id as it may appear at INFO+: its base name with ``--show-ids``, else the hash of the whole."""
    text = os.fspath(identifier)
    if showing_ids():
        return os.path.basename(text.rstrip("/")) or text
    return hashed(text)


def scrub(text: str, *identifiers: str | os.PathLike[str]) -> str:
    """``text`` with each identifier (and its base name) replaced by ``shown``; unchanged with ``--show-ids``."""
    if showing_ids():
        return text
    for ident in identifiers:
        full = os.fspath(ident)
        for part in sorted({full, os.path.basename(full.rstrip("/"))}, key=len, reverse=True):
            if len(part) > 2:  # never replace "a" or "/" everywhere
                text = text.replace(part, shown(full))
    return text
