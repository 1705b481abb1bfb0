"""The quarantine a person reviews: instances that may show identifying pixels, kept in ``JOB/quarantine``.

The engine keeps each held-back instance as received (``<id>.dcm``, owner-only, identified: it never leaves the
job folder) with a small JSON record (``<id>.json``: reason, original study id, state, blanked boxes). Ids are the
original's Orthanc instance id, never PHI. ``diana quarantine list|show|clean|release JOB`` work on this folder;
``job.json`` says how the job pseudonymized (profile, key id, destination) so a release goes the same way.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path
from typing import Any

from diana_core.errors import NotFound, ValidationError

# waiting: held back; cleaned: cleaned in review, not yet sent; released: sent after review;
# delivered: cleaned on the way by clean-pixels and delivered (kept as a preview and its boxes, for review)
WAITING, CLEANED, RELEASED, DELIVERED = "waiting", "cleaned", "released", "delivered"
_ID = re.compile(r"^[0-9a-f-]{8,64}$")


def _private_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class QuarantineStore:
    """Held-back instances of one job: ``keep`` (engine), ``entries``/``entry``/``update`` (review commands)."""

    def __init__(self, folder: str | os.PathLike[str], keep_cleaned: bool = True) -> None:
        self.path = Path(folder)
        self.keep_cleaned = keep_cleaned  # record instances clean-pixels cleaned on the way (preview + boxes)
        self._lock = threading.Lock()

    @property
    def job_dir(self) -> Path:
        return self.path.parent

    def hint(self) -> str:
        """The review commands, for messages that say an instance was quarantined."""
        job = str(self.job_dir)
        return f"review: diana quarantine list {job} (show, clean, release)"

    def _open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)

    def keep(self, qid: str, data: bytes, reason: str, study: str = "") -> Path:
        """Store one instance (bytes as received) and its record; kept again = replaced (same id, same data)."""
        self._check(qid)
        with self._lock:
            self._open()
            _private_write(self.path / f"{qid}.dcm", data)
            record = {"id": qid, "study": study, "reason": reason, "state": WAITING, "kept": time.time()}
            _private_write(self.path / f"{qid}.json", json.dumps(record, indent=1).encode("utf-8"))
        return self.path / f"{qid}.dcm"

    def keep_preview(self, qid: str, png: bytes, reason: str, study: str = "",
                     boxes: list[dict[str, Any]] | None = None) -> Path:
        """Record an instance cleaned on the way and delivered: a PNG of its cleaned first frame and its boxes."""
        self._check(qid)
        with self._lock:
            self._open()
            _private_write(self.preview_path(qid), png)
            record = {"id": qid, "study": study, "reason": reason, "state": DELIVERED, "kept": time.time(),
                      "boxes": boxes or []}
            _private_write(self.path / f"{qid}.json", json.dumps(record, indent=1).encode("utf-8"))
        return self.preview_path(qid)

    def preview_path(self, qid: str) -> Path:
        return self.path / f"{qid}.png"

    def set_context(self, **context: Any) -> None:
        """Record how the job pseudonymizes (profile, key id, uid scheme, destination) for a later release."""
        with self._lock:
            self._open()
            _private_write(self.path / "job.json", json.dumps(context, indent=1).encode("utf-8"))

    def context(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.path / "job.json").read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def entries(self) -> list[dict[str, Any]]:
        """Every record, oldest first (an empty list when nothing was quarantined)."""
        out = []
        for path in sorted(self.path.glob("*.json")) if self.path.is_dir() else []:
            if path.name == "job.json":
                continue
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return sorted(out, key=lambda r: (r.get("kept", 0), r.get("id", "")))

    def entry(self, qid: str) -> dict[str, Any]:
        """One record; NotFound naming the id (a unique prefix of 6+ characters is enough)."""
        matches = [r for r in self.entries() if r["id"] == qid] or \
            ([r for r in self.entries() if r["id"].startswith(qid)] if len(qid) >= 6 else [])
        if len(matches) != 1:
            raise NotFound(f"quarantine {self.job_dir}: no single instance {qid!r} "
                           f"({len(matches)} match; see diana quarantine list)")
        return matches[0]

    def update(self, qid: str, **fields: Any) -> dict[str, Any]:
        """Change a record's fields (state, boxes, released_to...) and return it."""
        with self._lock:
            record = {**self.entry(qid), **fields}
            _private_write(self.path / f"{record['id']}.json", json.dumps(record, indent=1).encode("utf-8"))
        return record

    def data_path(self, qid: str, cleaned: bool = False) -> Path:
        return self.path / (f"{qid}.cleaned.dcm" if cleaned else f"{qid}.dcm")

    def write_cleaned(self, qid: str, data: bytes) -> Path:
        with self._lock:
            _private_write(self.data_path(qid, cleaned=True), data)
        return self.data_path(qid, cleaned=True)

    def log(self, event: str, **fields: Any) -> None:
        """Append one review event (clean, release) to ``quarantine/log.jsonl``: ids and counts, no PHI."""
        with self._lock:
            self._open()
            fd = os.open(self.path / "log.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"time": time.time(), "event": event, **fields}) + "\n")

    @staticmethod
    def _check(qid: str) -> None:
        if not _ID.match(qid):
            raise ValidationError(f"quarantine id {qid!r} is not an instance id")
