"""Files a collection job keeps beside its journal: the lock, the key file and the failure report (owner-only,
never logged).

The key file maps original identifiers to pseudonyms. Rows are appended and flushed one study at a time, before
the journal marks the study done, so a job killed at any point never loses the mapping of a delivered study.
The lock (``flock`` on JOB/lock, which the kernel releases when its process dies, even by kill -9) keeps a second
run out of a job folder in use.
"""

from __future__ import annotations

import fcntl
import os
import threading
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from diana_core import csvcells
from diana_core.errors import JobLocked

KEY_FIELDS = ("PatientID", "StudyInstanceUID", "PseudoPatientID", "PseudoPatientName", "PseudoAccessionNumber",
              "PseudoStudyInstanceUID", "DestOID")


def private_open(path: Path, mode: str) -> IO[Any]:
    """Open for writing with mode 0600 from the start (no window where others could read)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, 0o600), mode, newline="", encoding="utf-8")


class KeyFile:
    """Append-only CSV of original -> pseudonym rows, one per worklist key (rows already there are not repeated)."""

    def __init__(self, path: str | os.PathLike[str], key: str = "AccessionNumber") -> None:
        self.path = Path(path)
        self.key = key
        self.fields = (key, *KEY_FIELDS)
        self._lock = threading.Lock()
        self._known: set[str] | None = None  # keys already in the file, read on first use (not by `jobs status`)

    @property
    def _seen(self) -> set[str]:
        if self._known is None:
            self._known = set()
            if self.path.exists():
                with self.path.open(encoding="utf-8", newline="") as fh:
                    self._known = {row.get(self.key, "") for row in csvcells.read_dicts(fh)}
        return self._known

    def add(self, row: Mapping[str, str]) -> None:
        """Write one row now (flushed and synced to disk)."""
        with self._lock:
            if row[self.key] in self._seen:
                return
            new = not self.path.exists()
            with private_open(self.path, "a") as fh:
                writer = csvcells.DictWriter(fh, fieldnames=list(self.fields), extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerow(dict(row))
                fh.flush()
                os.fsync(fh.fileno())
            self._seen.add(row[self.key])

    def __len__(self) -> int:
        return len(self._seen)


def private_folder(folder: Path) -> None:
    """Create the job folder if need be and make it owner-only (0700) before a file with keys or ids goes in."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)


def write_failure_report(path: Path, failed: Mapping[str, str], key: str) -> Path:
    """CSV of each failed worklist key and why (replaced on every run)."""
    with private_open(path, "w") as fh:
        writer = csvcells.Writer(fh)
        writer.writerow([key, "reason"])
        writer.writerows(sorted(failed.items()))
    return path


def write_key_file(path: Path, rows: Iterable[Mapping[str, str]], key: str) -> Path:
    """The key file (0600) from rows kept elsewhere (a shared job state) merged with the rows it already holds
    (an earlier run's), written whole and made durable (fsync of the file, rename, fsync of the folder) so the
    shared state may forget its copy afterwards."""
    merged: dict[str, dict[str, str]] = {}
    if path.exists():
        with path.open(encoding="utf-8", newline="") as fh:
            merged = {r.get(key, ""): r for r in csvcells.read_dicts(fh)}
    merged.update({str(r.get(key, "")): dict(r) for r in rows})
    tmp = path.with_name(path.name + ".part")
    with private_open(tmp, "w") as fh:
        writer = csvcells.DictWriter(fh, fieldnames=[key, *KEY_FIELDS], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(merged[k] for k in sorted(merged))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return path


class JobLock:
    """Exclusive lock of a job folder for this process (the folder is created 0700 if needed)."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        self.path = self.folder / "lock"
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode("ascii", "replace").strip() or "?"
            os.close(self._fd)
            self._fd = None
            raise JobLocked(f"job folder {str(self.folder)!r} is in use by another diana process (pid {holder}); "
                            "wait for it to finish, or use another --job-dir") from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        """Unlock (closing the descriptor releases the flock); safe to call twice."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None


def count_archive(path: str | os.PathLike[str]) -> int | None:
    """Instances in a study zip (members that are files, DICOMDIR excepted); None when it is not a zip."""
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        return sum(1 for m in archive.infolist()
                   if not m.is_dir() and os.path.basename(m.filename).upper() != "DICOMDIR")
