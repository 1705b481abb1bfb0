"""``RedisJobState``: one job's journal, key rows, facts and per-study claims in Redis, shared by every machine.

Layout under ``diana:job:<job>:`` — ``entries`` (hash key -> JSON journal entry with the worker that wrote it),
``keys`` (hash key -> JSON key row), ``info`` (hash), ``claim:<key>`` (a token with a TTL, renewed while held).
A worker killed with -9 stops renewing; its claim lapses after ``claim_ttl`` so the redelivered unit can run.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from diana_celery.app import broker_errors
from diana_core.errors import ConfigError
from diana_core.usecases.journal import PENDING, SENDING, JournalEntry

_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"


_NAMES_HELD: dict[str, Any] = {}  # worker name -> its scratch folder's lock file, held open (locked) for life


def scratch_root() -> Path:
    """Where every Diana worker of this OS user on this host keeps its scratch folder ($TMPDIR/diana-UID, 0700)."""
    base = Path(tempfile.gettempdir()) / f"diana-{os.getuid()}"
    base.mkdir(exist_ok=True, mode=0o700)
    return base


def worker_scratch(worker: str, purge: bool = False, wait: float = 15.0) -> Path:
    """This worker's private temp folder (0700), locked by this process for its life (``flock`` on
    ``.NAME.lock``: the kernel drops it when the process dies, even by kill -9). ``purge`` (a worker starting)
    takes the lock exclusively — waiting up to ``wait`` s for a predecessor of that name to exit, ConfigError if one
    still runs — empties its own folder and sweeps the folders of every dead worker on this host (study archives,
    identified, that a killed run left behind), never a live worker's. Other callers (a coordinator) hold the lock
    shared, so a starting worker leaves their folder alone too."""
    base = scratch_root()
    safe = _safe(worker)
    folder = base / safe
    if purge:
        _hold_name(base / f".{safe}.lock", worker, wait)
        if folder.exists():
            shutil.rmtree(folder)
        sweep_orphans(base)
    elif worker not in _NAMES_HELD:
        _hold_name(base / f".{safe}.lock", worker, wait, shared=True)
    folder.mkdir(exist_ok=True, mode=0o700)
    return folder


def _safe(worker: str) -> str:
    return "".join(c if c.isalnum() or c in "-_.@" else "_" for c in worker)


def sweep_orphans(base: Path) -> list[str]:
    """Remove the scratch folder of every worker whose lock nobody holds (it died); returns their names."""
    import fcntl

    swept = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        lock_path = base / f".{folder.name}.lock"
        with open(lock_path, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process holds it: its files are in use
            shutil.rmtree(folder, ignore_errors=True)
            lock_path.unlink(missing_ok=True)  # while still locked: no one else owns that name's lock meanwhile
            swept.append(folder.name)
    return swept


def _hold_name(lock_path: Path, worker: str, wait: float, shared: bool = False) -> None:
    import fcntl

    if worker in _NAMES_HELD:
        return
    deadline = time.monotonic() + wait
    while True:
        fh = open(lock_path, "a")  # noqa: SIM115 - kept open: the lock lives as long as this process
        try:
            fcntl.flock(fh, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            if time.monotonic() >= deadline:
                raise ConfigError(f"worker {worker!r}: a worker of that name is already running on this host; "
                                  "give each worker its own name (-n)") from None
            time.sleep(0.1)
            continue
        try:
            same = os.fstat(fh.fileno()).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        fh.close()  # a sweeper unlinked the file we locked (its dead owner's): lock the one at the path now
    _NAMES_HELD[worker] = fh


class RedisJobState:
    """JobState in Redis (see module doc); ``worker`` is recorded with every journal change."""

    def __init__(self, client: Any, job: str, key: str = "AccessionNumber", worker: str = "worker",
                 claim_ttl: float = 60.0, broker: str = "redis://") -> None:
        self.redis = client
        self.job = job
        self.key = key
        self.worker = worker
        self.claim_ttl = claim_ttl
        self.broker = broker
        self.prefix = f"diana:job:{job}:"
        self.scratch = worker_scratch(worker)

    def _errors(self, what: str) -> Any:
        return broker_errors(self.broker, f"job {self.job}: {what}")

    def _entry(self, key: str, raw: str | None) -> JournalEntry | None:
        return None if raw is None else _journal_entry(key, json.loads(raw))

    def get(self, key: str) -> JournalEntry | None:
        with self._errors("get"):
            return self._entry(key, self.redis.hget(self.prefix + "entries", key))

    def raw_entries(self) -> dict[str, dict[str, Any]]:
        """Every entry as stored (with ``updated`` and ``worker``), for status views."""
        with self._errors("entries"):
            return {k: json.loads(v) for k, v in self.redis.hgetall(self.prefix + "entries").items()}

    def mark(self, key: str, status: str, **values: Any) -> None:
        with self._errors("mark"):
            old = self.redis.hget(self.prefix + "entries", key)
            data: dict[str, Any] = json.loads(old) if old else {"status": PENDING, "attempts": 0, "instances": 0}
            data.update(values, status=status, updated=time.time(), worker=self.worker)
            if status == SENDING:
                data["attempts"] = int(data.get("attempts") or 0) + 1
            self.redis.hset(self.prefix + "entries", key, json.dumps(data))

    def entries(self, status: str | None = None) -> Iterator[JournalEntry]:
        for key, data in sorted(self.raw_entries().items()):
            if status is None or data.get("status") == status:
                yield _journal_entry(key, data)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for data in self.raw_entries().values():
            out[data["status"]] = out.get(data["status"], 0) + 1
        return out

    def add_key_row(self, row: Mapping[str, str]) -> None:
        with self._errors("add key row"):  # Redis acknowledges the write before the study is marked done
            self.redis.hsetnx(self.prefix + "keys", row[self.key], json.dumps(dict(row)))

    def key_rows(self) -> list[dict[str, str]]:
        with self._errors("key rows"):
            return [json.loads(v) for _, v in sorted(self.redis.hgetall(self.prefix + "keys").items())]

    def forget_key_rows(self, keys: Iterable[str]) -> None:
        """HDEL the rows the key file now holds (a redelivered straggler's later row stays for the next run)."""
        wanted = list(keys)
        with self._errors("forget key rows"):
            for start in range(0, len(wanted), 1000):
                self.redis.hdel(self.prefix + "keys", *wanted[start:start + 1000])

    def purge(self, compact: bool = False) -> int:
        """Delete every ``diana:job:<job>:*`` key; ``compact``: BGREWRITEAOF, so the append-only file forgets
        them too (until the rewrite, the AOF still holds every command ever applied, deleted rows included)."""
        with self._errors("purge"):
            names = list(self.redis.scan_iter(match=self.prefix + "*", count=1000))
            for start in range(0, len(names), 1000):
                self.redis.delete(*names[start:start + 1000])
            if compact:
                self.redis.bgrewriteaof()
        return len(names)

    @contextlib.contextmanager
    def claim(self, key: str) -> Iterator[bool]:
        name, token, ttl_ms = f"{self.prefix}claim:{key}", secrets.token_hex(8), int(self.claim_ttl * 1000)
        with self._errors("claim"):
            got = bool(self.redis.set(name, token, nx=True, px=ttl_ms))
        if not got:
            yield False
            return
        stop = threading.Event()

        def renew() -> None:
            while not stop.wait(self.claim_ttl / 3):
                with contextlib.suppress(Exception):  # a missed renewal only shortens the claim
                    self.redis.eval(_RENEW, 1, name, token, ttl_ms)

        thread = threading.Thread(target=renew, name="diana-claim", daemon=True)
        thread.start()
        try:
            yield True
        finally:
            stop.set()
            thread.join()
            with contextlib.suppress(Exception):  # the claim lapses by itself if Redis is gone
                self.redis.eval(_RELEASE, 1, name, token)

    def set_info(self, **values: Any) -> None:
        with self._errors("set info"):
            self.redis.hset(self.prefix + "info", mapping={k: json.dumps(v, default=str) for k, v in values.items()})

    def info(self) -> dict[str, Any]:
        with self._errors("info"):
            return {k: json.loads(v) for k, v in self.redis.hgetall(self.prefix + "info").items()}

    def done_times(self) -> list[tuple[float, str]]:
        """(time, worker) of every entry that is done, for rates and per-worker counts."""
        return [(float(d.get("updated") or 0), str(d.get("worker") or "?"))
                for d in self.raw_entries().values() if d.get("status") == "done"]

    def close(self) -> None:
        self.redis.close()


def _journal_entry(key: str, data: dict[str, Any]) -> JournalEntry:
    return JournalEntry(key, str(data.get("status", PENDING)), int(data.get("attempts") or 0), data.get("source_oid"),
                        data.get("dest_oid"), int(data.get("instances") or 0), data.get("error"))
