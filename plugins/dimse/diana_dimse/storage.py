"""Where received instances go: a folder (each file written atomically: temp name + rename), a zip archive, or
memory. The receiver and the C-MOVE/C-GET retrieval write through these sinks; bytes are stored as the peer sent
them (never decoded and re-encoded).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import secrets
import threading
import zipfile
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from diana_core.delivery import durable_write

_UID_RE = re.compile(r"[0-9]+(\.[0-9]+)*")


def safe_name(uid: str) -> str:
    """A UID as a file-name component: a valid UID as it is; anything else (".", "..", a slash, spaces, an empty
    value) as ``x`` + the SHA-1 of the raw value, so distinct values never share a file name."""
    raw = str(uid)
    if len(raw) <= 64 and _UID_RE.fullmatch(raw):
        return raw
    return "x" + hashlib.sha1(raw.encode("utf-8", "surrogateescape")).hexdigest()


def write_atomic(path: Path, data: bytes, make_parent: bool = True, durable: bool = False,
                 mark: bool = False) -> Path:
    """Write ``data`` to ``path`` so readers see the whole file or nothing (same-folder temp file + rename);
    ``durable`` fsyncs file and folder, ``mark`` leaves a pending mark (diana_core.delivery)."""
    return durable_write(path, data, durable=durable, mark=mark, make_parent=make_parent)


KEEP_UIDS = 10_000
"""SOP instance UIDs a sink remembers (the latest): bounded, so a long-running receiver does not grow with each one."""


class Sink:
    """Receives instances (SOP instance UID, header keys, full DICOM file bytes); thread-safe; counts them."""

    def __init__(self) -> None:
        self.count = 0
        self.sop_uids: deque[str] = deque(maxlen=KEEP_UIDS)  # the last ones: a receiver's sink lives for months
        self._lock = threading.Lock()

    def add(self, sop_uid: str, keys: dict[str, str], data: bytes) -> Any:
        """Store one instance; ``keys`` may name its StudyInstanceUID (folder layout by study)."""
        with self._lock:
            where = self._add(sop_uid, keys.get("StudyInstanceUID"), data)
            self.count += 1
            self.sop_uids.append(sop_uid)
            return where

    def _add(self, sop_uid: str, study_uid: str | None, data: bytes) -> Any:
        raise NotImplementedError

    def close(self, ok: bool = True) -> None:
        """Finish the sink (a zip is renamed into place only when ``ok``)."""


class FolderSink(Sink):
    """Files ``folder/[StudyInstanceUID/]SOPInstanceUID.dcm``."""

    def __init__(self, folder: str | os.PathLike[str], by_study: bool = False, durable: bool = False,
                 mark: bool = False) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.by_study = by_study
        self.durable, self.mark = durable, mark  # fsync file + folder; leave a pending mark (the receiver)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._made: set[Path] = {self.folder}

    def add(self, sop_uid: str, keys: dict[str, str], data: bytes) -> Any:
        """Store one instance; writes run in parallel (each association's fsync need not wait for another's)."""
        where = self._add(sop_uid, keys.get("StudyInstanceUID"), data)
        with self._lock:
            self.count += 1
            self.sop_uids.append(sop_uid)
        return where

    def adopt_many(self, files: list[tuple[str, dict[str, str], Path]]) -> list[Path]:
        """Take finished files written by someone else (storescp): each fsynced and renamed into place with its
        mark, then each folder fsynced once (the durability of ``add``, one folder fsync for many files)."""
        from diana_core.delivery import PendingMarks, fsync_dir, make_dirs_durable

        if self.durable and len(files) > 1:  # concurrent fsyncs share the filesystem's journal commits
            list(_fsync_pool().map(_fdatasync, [src for _, _, src in files]))
        elif self.durable:
            _fdatasync(files[0][2])
        paths = []
        for sop_uid, keys, src in files:
            path = self.path_for(sop_uid, keys.get("StudyInstanceUID"))
            if path.parent not in self._made or not path.parent.exists():
                if self.durable:
                    make_dirs_durable(path.parent)
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                self._made.add(path.parent)
            if self.mark:  # first: storescp already answered success, so a kill between the two must leave the
                PendingMarks.add(path)  # file in .incoming (adopted again at the next start), never unmarked in place
            os.replace(src, path)
            paths.append(path)
        if self.durable:
            for folder in {p.parent for p in paths}:
                fsync_dir(folder)
        with self._lock:
            self.count += len(paths)
            self.sop_uids.extend(sop for sop, _, _ in files)
        return paths

    def path_for(self, sop_uid: str, study_uid: str | None) -> Path:
        base = self.folder / safe_name(study_uid) if self.by_study and study_uid else self.folder
        return base / f"{safe_name(sop_uid)}.dcm"

    def _add(self, sop_uid: str, study_uid: str | None, data: bytes) -> Path:
        path = self.path_for(sop_uid, study_uid)
        fresh = path.parent not in self._made  # one mkdir per folder, not per instance
        self._made.add(path.parent)
        try:
            return write_atomic(path, data, make_parent=fresh, durable=self.durable, mark=self.mark)
        except FileNotFoundError:  # the folder was removed meanwhile (a routed study deleted): make it again
            return write_atomic(path, data, durable=self.durable, mark=self.mark)


def _fdatasync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)
    finally:
        os.close(fd)


@functools.cache
def _fsync_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(8, thread_name_prefix="diana-fsync")


class ZipSink(Sink):
    """A zip archive (members ``SOPInstanceUID.dcm``, stored uncompressed) at a path or into a binary file object;
    a path is written under a temporary name and renamed when the retrieval succeeded."""

    def __init__(self, dest: str | os.PathLike[str] | IO[bytes]) -> None:
        super().__init__()
        self._final: Path | None = None
        if isinstance(dest, (str, os.PathLike)):
            self._final = Path(dest)
            self._final.parent.mkdir(parents=True, exist_ok=True)
            self._tmp = self._final.parent / f".{self._final.name}.{secrets.token_hex(4)}.part"
            self._zip = zipfile.ZipFile(self._tmp, "w", zipfile.ZIP_STORED, allowZip64=True)
        else:
            self._zip = zipfile.ZipFile(dest, "w", zipfile.ZIP_STORED, allowZip64=True)

    def _add(self, sop_uid: str, study_uid: str | None, data: bytes) -> str:
        name = f"{safe_name(sop_uid)}.dcm"
        self._zip.writestr(name, data)
        return name

    def close(self, ok: bool = True) -> None:
        self._zip.close()
        if self._final is not None:
            if ok:
                os.replace(self._tmp, self._final)
            else:
                self._tmp.unlink(missing_ok=True)


class MemorySink(Sink):
    """Keeps the bytes (for one instance or a few)."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[bytes] = []

    def _add(self, sop_uid: str, study_uid: str | None, data: bytes) -> int:
        self.files.append(data)
        return len(self.files) - 1


def sink_for(dest: str | os.PathLike[str] | IO[bytes] | None) -> Sink:
    """A zip for ``*.zip`` paths and file objects, a folder for other paths, memory for None."""
    if dest is None:
        return MemorySink()
    if not isinstance(dest, (str, os.PathLike)):
        return ZipSink(dest)
    if str(dest).lower().endswith(".zip"):
        return ZipSink(dest)
    return FolderSink(dest)
