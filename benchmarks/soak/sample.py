"""One sample every 10 s: the watcher process (RSS, fds, threads), its state files, the backlog and the latency.

Latency is end to end: from the instance landing in the receiver's folder (or being renamed into the watched
folder) to its copy in the archive folder (both files' mtimes, one clock). Both routes of an event run one after
the other in the one watcher loop, so this is the router's latency; the Orthanc copy is counted, not timed.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

FIELDS = ("t", "load1", "watch_pid", "watch_age", "rss_mb", "fds", "threads", "sent", "at_orthanc", "in_archive",
          "backlog", "retry_queue", "handled", "dead", "pending_marks", "ledger_kb", "ledger_rows",
          "deadletter_kb", "folder_state_kb", "audit_kb", "log_kb", "latency_n", "latency_p50", "latency_p95")


def _proc(pid: int | None) -> tuple[float | None, int | None, int | None]:
    """(RSS MiB, open fds, threads) of a live process, from /proc."""
    if pid is None:
        return None, None, None
    try:
        rss = threads = None
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1]) / 1024
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        return rss, len(os.listdir(f"/proc/{pid}/fd")), threads
    except OSError:
        return None, None, None


def _kb(*paths: Path) -> float:
    total = 0
    for path in paths:
        try:
            total += path.stat().st_size
        except OSError:
            pass
    return round(total / 1024, 1)


def _rows(ledger: Path) -> int | None:
    """Rows in the routes ledger (read-only; WAL readers never block the daemon)."""
    import sqlite3

    if not ledger.exists():
        return None
    try:
        db = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT count(*) FROM delivered").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return None


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


class Sampler:
    """Keeps what it saw of the archive between samples, so each sample reads only the new files."""

    def __init__(self, work: Path, site: Any, watch: Any, research: Any) -> None:
        self.work, self.site, self.watch, self.research = work, site, watch, research
        self.archive, self.state = work / "archive", work / "state"
        self.seen: set[str] = set()
        self.unresolved: dict[str, float] = {}  # archive file -> its mtime, while the sender's record is not in yet
        self.latencies: list[float] = []  # every one measured (for the summary's whole-run percentiles)
        self.started = time.monotonic()
        self.rows: list[dict[str, Any]] = []
        self.orthanc_last: int | None = None

    def _new_archive_files(self) -> list[tuple[str, float]]:
        new = []
        for folder, _dirs, files in os.walk(self.archive):
            for name in files:
                if name.endswith(".dcm") and name not in self.seen:
                    try:
                        mtime = os.stat(os.path.join(folder, name)).st_mtime
                    except OSError:
                        continue
                    self.seen.add(name)
                    new.append((name, mtime))
        return new

    def _latencies(self, new: list[tuple[str, float]]) -> list[float]:
        items = self.site.expected.items
        self.unresolved.update(new)
        out = []
        for name, arrived in list(self.unresolved.items()):
            record = items.get(name[:-4])
            if record is None:
                continue
            del self.unresolved[name]
            try:
                started = os.stat(record[1]).st_mtime
            except OSError:
                continue
            if arrived >= started:  # a re-sent instance rewrites the receiver's copy: that one is not timed
                out.append(arrived - started)
        return out

    def _pending_marks(self) -> int:
        count = 0
        for _folder, _dirs, files in os.walk(self.work / "inbox"):
            count += sum(1 for f in files if f.endswith(".pending"))
        return count

    def sample(self) -> dict[str, Any]:
        now = time.monotonic()
        pid = self.watch.pid
        rss, fds, threads = _proc(pid)
        status = self.watch.status() if pid else None
        new = self._new_archive_files()
        lat = self._latencies(new)
        self.latencies += lat
        at_orthanc = self.research.count()
        if at_orthanc is not None:
            self.orthanc_last = at_orthanc
        sent = self.site.expected.total()
        ledger = self.state / "ledger.sqlite"
        folders = list((self.state / "diana" / "folders").glob("*.json")) if (self.state / "diana").exists() else []
        row = {
            "t": round(now - self.started, 1), "load1": os.getloadavg()[0], "watch_pid": pid,
            "watch_age": round(now - self.watch.started_at, 1) if pid else None,
            "rss_mb": None if rss is None else round(rss, 1), "fds": fds, "threads": threads,
            "sent": sent, "at_orthanc": at_orthanc, "in_archive": len(self.seen),
            "backlog": max(0, sent - len(self.seen)),
            "retry_queue": status.get("retry_queue") if status else None,
            "handled": status.get("handled") if status else None,
            "dead": status.get("dead") if status else None,
            "pending_marks": self._pending_marks(),
            "ledger_kb": _kb(ledger, Path(f"{ledger}-wal"), Path(f"{ledger}-shm")),
            "ledger_rows": _rows(ledger),
            "deadletter_kb": _kb(self.state / "deadletter.jsonl"),
            "folder_state_kb": _kb(*folders),
            "audit_kb": _kb(self.state / "audit.jsonl"),
            "log_kb": _kb(self.work / "watch.log"),
            "latency_n": len(lat),
            "latency_p50": None if not lat else round(_percentile(lat, 50) or 0, 3),
            "latency_p95": None if not lat else round(_percentile(lat, 95) or 0, 3),
        }
        self.rows.append(row)
        return row
