"""The delivery contract (DESIGN §11): receive -> persist -> deliver -> verify, and its durable building blocks.

A source acknowledges what it received (C-STORE success, a watcher cursor) only after ``persist``: the bytes are on
disk (file and folder fsynced, ``durable_write``) and a pending mark says "not yet delivered" (``PendingMarks``).
The mark goes once the destination took the item (the watcher's ack); a restart replays every item still marked.
Stdlib only: plugins and use cases share it, so no path re-implements (or forgets) a step.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

MARK_SUFFIX = ".pending"
T = TypeVar("T")


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a folder's entries (created, renamed, removed files) durable: fsync the folder itself."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs_durable(folder: Path) -> None:
    """Create ``folder`` (and missing parents) so that each new entry survives a crash (parent fsynced)."""
    missing = []
    current = folder
    while not current.exists():
        missing.append(current)
        current = current.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):
            new.mkdir()
        fsync_dir(new.parent)


def durable_write(path: str | os.PathLike[str], data: bytes, *, durable: bool = True, mark: bool = False,
                  make_parent: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (same-folder temp file + rename); with ``durable`` (default) the file
    and its folder are fsynced before returning, so a crash afterwards keeps it. ``mark`` also leaves a pending
    mark beside it (``PendingMarks``), made durable by the same folder fsync."""
    target = Path(path)
    if make_parent and not target.parent.exists():
        if durable:
            make_dirs_durable(target.parent)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.part"
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fdatasync(fh.fileno())
        if mark:  # before the file is in place: a crash between the two leaves a mark without a file (dropped)
            PendingMarks.add(target)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(target.parent)
    return target


class PendingMarks:
    """Persisted-but-not-delivered items under a root folder: an empty ``.NAME.pending`` beside each file.

    The mark is created before the file is renamed into place (a crash between the two leaves a mark without its
    file, which ``pending`` drops, never a file without its mark) and before the folder's fsync that makes the file
    durable (one fsync covers both), removed
    when the item was delivered (``done``; not fsynced: a lost removal repeats a delivery, never loses one), and
    ``pending()`` lists what a restart must replay.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @staticmethod
    def mark_path(path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        return p.parent / f".{p.name}{MARK_SUFFIX}"

    @staticmethod
    def add(path: str | os.PathLike[str]) -> None:
        """Mark the item at ``path`` (to be) as not yet delivered: an empty file (os.open: a third of the CPU of
        ``Path.touch``, which a receiver pays per instance)."""
        os.close(os.open(PendingMarks.mark_path(path), os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))

    def done(self, path: str | os.PathLike[str]) -> bool:
        """The item at ``path`` was delivered: drop its mark; True if there was one."""
        try:
            self.mark_path(path).unlink()
        except FileNotFoundError:
            return False
        return True

    def is_pending(self, path: str | os.PathLike[str]) -> bool:
        return self.mark_path(path).exists()

    def pending(self) -> Iterator[Path]:
        """Files still marked (a mark whose file is gone is dropped), in folder order."""
        if not self.root.is_dir():
            return
        stack = [self.root]
        while stack:
            folder = stack.pop()
            try:
                entries = sorted(os.scandir(folder), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.name.startswith(".") and entry.name.endswith(MARK_SUFFIX):
                    target = folder / entry.name[1:-len(MARK_SUFFIX)]
                    if target.is_file():
                        yield target
                    else:
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(entry.path)


def default_state_file(kind: str, key: str, suffix: str = ".json") -> str:
    """Where a source keeps its mark (or ``watch -R`` its ledger) when none is configured:
    ``$XDG_STATE_HOME/diana/KIND/<hash of KEY><suffix>`` (``~/.local/state/...``), keyed by e.g. the watched
    folder's or the routes file's absolute path."""
    import hashlib

    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:20]
    folder = Path(base, "diana", kind)
    private_dirs(folder, Path(base))
    return str(folder / f"{digest}{suffix}")


def private_dirs(folder: Path, above: Path) -> None:
    """Create ``folder`` and its parents below ``above`` owner-only (0700): what lies in Diana's own state and
    data folders names studies (marks, ledgers, registries), whatever the umask says. Existing folders of ours
    are tightened; ``above`` (the user's XDG folder) is left as it is."""
    above.mkdir(parents=True, exist_ok=True)
    below = [p for p in [folder, *folder.parents] if p != above and above in p.parents]
    for p in reversed(below):
        with contextlib.suppress(FileExistsError):
            p.mkdir(mode=0o700)
        if p.stat().st_mode & 0o077:
            p.chmod(0o700)


# --- receive: bounded reads ---------------------------------------------------------------------------------------
GiB = 1 << 30
DEFAULT_MAX_INSTANCE_BYTES = 4 * GiB
"""Largest instance file any path reads (``max_instance_bytes`` where configurable); generous for multi-frame."""

UNCHECKED_INSTANCE_BYTES = 256 * (1 << 20)
"""Files up to this size are read whole; larger ones only when their header declares pixel data that fills them."""


def looks_like_dicom(head: bytes) -> bool:
    """A cheap look at a file's first 136+ bytes: "DICM" at 128 followed by the file meta (group 0002) or a
    dataset (group 0008), or no preamble and a first element in the low groups (0002..0010).
    Zeros, text and other formats fail in microseconds, before any DICOM parser walks them."""
    if len(head) >= 134 and head[128:132] == b"DICM":
        return int.from_bytes(head[132:134], "little") in (0x0002, 0x0008)
    if len(head) < 8:
        return False
    for order in ("little", "big"):  # a bare big-endian dataset is rare but real
        if 0x0002 <= int.from_bytes(head[0:2], order) <= 0x0010:  # type: ignore[arg-type]
            return True
    return False


def refuse_unless_plausible(path: str | os.PathLike[str], max_bytes: int = DEFAULT_MAX_INSTANCE_BYTES) -> int:
    """The file's size, or InvalidDicom (one line, naming the file) when it is larger than ``max_bytes`` or does
    not start like DICOM; reads 136 bytes."""
    from diana_core.errors import InvalidDicom

    name = os.path.basename(os.fspath(path))
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(136)
    if size > max_bytes:
        raise InvalidDicom(f"{name}: {size / GiB:.1f} GiB is over the per-instance limit of "
                           f"{max_bytes / GiB:.1f} GiB (max_instance_bytes)")
    if not looks_like_dicom(head):
        raise InvalidDicom(f"{name}: not DICOM (no 'DICM' preamble and no DICOM element at the start)")
    return size


# --- deliver: one short attempt per try --------------------------------------------------------------------------
_ATTEMPT_BUDGET: contextvars.ContextVar[float | None] = contextvars.ContextVar("diana_attempt_budget", default=None)


def attempt_budget() -> float | None:
    """Seconds one delivery attempt may take, when the caller retries on its own schedule (the watcher); None
    when the endpoint may use its own retries. Endpoints with built-in retries make one attempt within it."""
    return _ATTEMPT_BUDGET.get()


@contextlib.contextmanager
def single_attempt(seconds: float) -> Iterator[None]:
    """Within the block, endpoints make one attempt of at most ``seconds`` per request (no retries of their own):
    the caller owns the retry schedule and must not block behind an endpoint's backoff."""
    token = _ATTEMPT_BUDGET.set(seconds)
    try:
        yield
    finally:
        _ATTEMPT_BUDGET.reset(token)


def carry_attempt_budget(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to the caller's attempt budget, for a worker thread (context variables do not cross into a
    thread pool); ``fn`` itself when no budget is set."""
    budget = attempt_budget()
    if budget is None:
        return fn

    def run(*args: Any, **kwargs: Any) -> T:
        with single_attempt(budget):
            return fn(*args, **kwargs)

    return run


__all__ = ["DEFAULT_MAX_INSTANCE_BYTES", "UNCHECKED_INSTANCE_BYTES", "PendingMarks", "attempt_budget", "carry_attempt_budget",
           "default_state_file", "durable_write", "fsync_dir", "looks_like_dicom", "make_dirs_durable",
           "private_dirs", "refuse_unless_plausible", "single_attempt"]
