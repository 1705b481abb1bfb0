"""The audit trail (accounting of disclosures): an append-only, hash-chained ``audit.jsonl`` per job folder.

Every path that discloses data (collect, watch, put/upload, index) writes here through ``AuditTrail``: who (OS user,
host), when, the command line with secrets redacted, source and destination, profile and key id (a fingerprint,
never the key), then one line per study or file — pseudonymized id, instance count, outcome — and a closing line.
Identifiers (worklist keys, file names) appear only when the process runs with ``--show-ids``.

Each line is canonical JSON carrying ``prev`` (SHA-256 of the previous line's bytes; 64 zeros for the first) and
``sha256`` (of the line's own content without that field), so ``verify`` names the first line edited, inserted or
removed. Appends hold ``flock`` on the file, so processes sharing one trail keep one chain.
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import json
import os
import re
import secrets
import socket
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from diana_core import csvcells, redaction

AUDIT_FILE = "audit.jsonl"
GENESIS = "0" * 64
CSV_COLUMNS = ("line", "time", "event", "run", "user", "host", "command", "source", "dest", "profile", "key_id",
               "row", "study", "instances", "outcome", "reason", "original", "counts")
_SECRET_WORDS = "password|passwd|secret|token|pseudonym_key|auth|key"  # noqa: S105 - names, not values
_SECRET_FLAG = r"--?(?:[\w-]*(?:password|passwd|secret|token|auth)[\w-]*|key|pseudonym[-_]key)"  # noqa: S105
_SECRET_OPTION = re.compile(rf"^{_SECRET_FLAG}$", re.I)
_SECRET_ASSIGN = re.compile(rf"^({_SECRET_FLAG}=).+$", re.I)
_SECRET_YAML = re.compile(rf"(\b[\w-]*(?:{_SECRET_WORDS})[\w-]*\s*[:=]\s*)([^,}}\s]+)", re.I)
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s]*@", re.I)
_REDACTED = "***"


def default_path() -> Path:
    """The trail of commands that run without a job folder (watch, put, upload, index):
    $XDG_STATE_HOME/diana/audit.jsonl (~/.local/state/diana/audit.jsonl)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(base) / "diana" / AUDIT_FILE


def redact_argv(argv: Sequence[str], hide: Iterable[str] = ()) -> list[str]:
    """``argv`` with secrets replaced by *** (values of --...password/token/key options, ``key: value`` in inline
    YAML, user:password@ in URLs) and each ``hide`` value (an identifier) by its keyed hash."""
    hidden = [h for h in hide if h]
    out: list[str] = []
    secret_next = False
    for arg in argv:
        if secret_next:
            out.append(_REDACTED)
            secret_next = False
            continue
        if _SECRET_OPTION.match(arg):
            secret_next = True
            out.append(arg)
            continue
        text = _SECRET_ASSIGN.sub(rf"\g<1>{_REDACTED}", arg)
        text = _SECRET_YAML.sub(rf"\g<1>{_REDACTED}", text)
        text = _URL_CREDENTIALS.sub(rf"\g<1>{_REDACTED}@", text)
        for value in hidden:
            text = redaction.scrub(text, value)
        out.append(text)
    return out


def _canonical(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AuditTrail:
    """Appends audit records to ``path`` (created 0600 in a 0700 folder); one ``run`` id per instance."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.run = secrets.token_hex(6)
        self.show_ids = redaction.showing_ids()
        self._lock = threading.Lock()

    @classmethod
    def for_job(cls, folder: str | os.PathLike[str]) -> AuditTrail:
        """The trail of a job folder (JOB/audit.jsonl)."""
        return cls(Path(folder) / AUDIT_FILE)

    @classmethod
    def at(cls, path: str | os.PathLike[str] | None) -> AuditTrail:
        """The trail in ``path``: a job folder, a .jsonl file, or (None) the user's ``default_path()``."""
        if path is None:
            return cls(default_path())
        return cls.for_job(path) if Path(path).is_dir() else cls(path)

    def start(self, command: str, source: Any = None, dest: Any = None, profile: str | None = None,
              key_id: str | None = None, hide: Iterable[str] = (), **facts: Any) -> None:
        """The opening line: who, where from, the redacted command line, what goes where, with which profile/key."""
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "diana"
        argv = ["diana" if prog in ("__main__.py", "-c", "-m") else prog, *sys.argv[1:]]
        self.append("start", command=command, user=getpass.getuser(), host=socket.gethostname(), pid=os.getpid(),
                    argv=redact_argv(argv, hide), source=_name(source), dest=_name(dest), profile=profile,
                    key_id=key_id, show_ids=self.show_ids, **facts)

    def item(self, outcome: str, instances: int = 0, study: str | None = None, row: int | None = None,
             original: str | None = None, reason: str | None = None, durable: bool = True, **facts: Any) -> None:
        """One study or file: its pseudonymized id (``study``), instances moved, outcome; ``original`` (a worklist
        key or file name) is kept only with --show-ids, else its keyed hash; ``reason`` is cut to its kind.
        ``durable=False`` writes the line without its own fsync (for what disclosed nothing, e.g. a skip)."""
        record: dict[str, Any] = {**facts, "outcome": outcome, "instances": int(instances)}
        if study:
            record["study"] = study
        if row is not None:
            record["row"] = row
        if original:
            record["original"] = original if self.show_ids else redaction.hashed(original)
        if reason:
            record["reason"] = reason if self.show_ids else reason.split(":")[0][:80]
        self._append("item", record, sync=durable)

    def event(self, route: str, outcome: str, data: Any, result: Any = None, reason: str | None = None) -> None:
        """One event of a daemon or a bulk command (a file, an instance, a study): the route, the id the destination
        gave it (when it is an id, not a path), the file or item it came from (hashed unless --show-ids)."""
        original = getattr(data, "fn", None) or (os.fspath(data) if isinstance(data, (str, os.PathLike)) else None)
        if original is None and hasattr(data, "summary"):
            original = str(data.summary().get("id") or "") or None
        study = result if isinstance(result, str) and os.sep not in result else None
        self.item(outcome, 1 if outcome in ("handled", "done") else 0, study, None, original, reason, route=route)

    def finish(self, **counts: Any) -> None:
        """The closing line with the run's counts."""
        self.append("finish", counts=counts)

    def append(self, event: str, **fields: Any) -> dict[str, Any]:
        """Write one chained line now (flushed and fsynced); returns the record."""
        return self._append(event, fields)

    def _append(self, event: str, fields: dict[str, Any], sync: bool = True) -> dict[str, Any]:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "r+b") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes
                record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event,
                          "run": self.run, **{k: v for k, v in fields.items() if v is not None},
                          "prev": _last_line_sha(fh)}
                record["sha256"] = _sha(_canonical(record))
                fh.write((_canonical(record) + "\n").encode("utf-8"))
                fh.flush()
                if sync:
                    os.fsync(fh.fileno())
        return record


def _name(endpoint: Any) -> str | None:
    """A service's name (or a folder/file path as given); never its settings, which may hold credentials."""
    if endpoint is None:
        return None
    if isinstance(endpoint, (str, os.PathLike)):
        return _URL_CREDENTIALS.sub(rf"\g<1>{_REDACTED}@", os.fspath(endpoint))
    return str(getattr(endpoint, "name", None) or type(endpoint).__name__)


def _last_line_sha(fh: IO[bytes]) -> str:
    """SHA-256 of the file's last line (GENESIS when empty), read backwards from the end."""
    end = fh.seek(0, os.SEEK_END)
    if end == 0:
        return GENESIS
    pos, tail = end, b""
    while pos > 0 and tail.count(b"\n") < 2:
        step = min(4096, pos)
        pos -= step
        fh.seek(pos)
        tail = fh.read(step) + tail
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return hashlib.sha256(last).hexdigest()


def read(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) of each line of a trail."""
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                yield n, json.loads(line)


def verify(path: str | os.PathLike[str]) -> tuple[int, str | None]:
    """(lines checked, None) for an intact trail, else (number of the first broken line, why)."""
    prev = GENESIS
    n = 0
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, start=1):  # noqa: B007 - n is the count after the loop
            line = raw.rstrip(b"\n")
            try:
                record = json.loads(line)
                own = record.pop("sha256")
            except (ValueError, KeyError, AttributeError, TypeError):
                return n, f"line {n} is not an audit record (edited, or cut short)"
            if _sha(_canonical(record)) != own:
                return n, f"line {n} was altered (its content does not match its sha256)"
            if record.get("prev") != prev:
                return n, f"line {n} does not follow line {n - 1} (a line was removed, inserted or reordered)"
            prev = hashlib.sha256(line).hexdigest()
    return n, None


def csv_rows(path: str | os.PathLike[str]) -> Iterator[list[Any]]:
    """The trail as rows under ``CSV_COLUMNS`` (start facts repeated on each line of their run), for an IRB."""
    starts: dict[str, dict[str, Any]] = {}
    for n, rec in read(path):
        if rec.get("event") == "start":
            starts[rec.get("run", "")] = rec
        head = starts.get(rec.get("run", ""), {})
        merged = {**{k: head.get(k) for k in ("user", "host", "source", "dest", "profile", "key_id")}, **rec}
        merged["command"] = " ".join(head.get("argv") or [])
        merged["line"] = n
        if "counts" in rec:
            merged["counts"] = json.dumps(rec["counts"], sort_keys=True)
        yield ["" if merged.get(c) is None else merged.get(c) for c in CSV_COLUMNS]


def write_csv(path: str | os.PathLike[str], out: IO[str]) -> None:
    """``csv_rows`` through the one CSV writer (formula-looking cells defused)."""
    writer = csvcells.Writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_rows(path))
