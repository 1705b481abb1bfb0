"""ObservableDcmDir: a DcmDir that reports FILE_ADDED once per completed file, via a watchdog observer.

A file is complete, and announced at once, when its writer closes it after writing (inotify's close-write) or when
it is renamed into the folder (how DICOM receivers finish a file). Files seen only as created/modified (network
shares, polling observers) are announced by a background thread after their size and mtime stayed the same across
two checks with no event in between, so a slow writer never yields a half file and one slow file never holds back
the others. Each announcement wakes the watcher (``Waking`` port): no waiting for its next poll.

A mark (an inode-change time) is persisted as the Watcher acknowledges events: every file changed before it was
handled. It lives in ``state_file``, by default in ``$XDG_STATE_HOME/diana/folders/`` keyed by the folder's path;
``from_now: true`` (``diana watch --from-now``) keeps no mark and announces only what comes later. On start the observer catches up with files changed since the mark, listing the tree
but reading only folders changed since then (a folder's timestamp moves when a file is created or renamed into it),
so files written while the daemon was down are routed, and a restart is not a rescan of millions of files.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import tempfile
import threading
import time
from typing import Any

from attrs import define, field

from diana_core import Event, EventType, Observable
from diana_core.delivery import default_state_file
from diana_core.errors import ConfigError
from diana_core.ports import Acknowledging, FromNow, Resuming
from diana_dcmdir.dcmdir import DcmDir

logger = logging.getLogger(__name__)

_SLACK_NS = 5 * 10**9  # a file changed this long ago has been seen by the OS watcher: the mark may pass it
_SAVE_EVERY = 0.5  # seconds between writes of the mark (a kill loses at most this much: repeats, never losses)
# names writers use while a file is incomplete: its close is not "complete" (a rename to the final name follows)
_TEMP_SUFFIXES = (".partial", ".part", ".tmp", ".temp", ".filepart", ".crdownload", ".swp")
_EMITTED_MEMORY = 100_000  # remember this many emitted files so a touch does not re-announce them


class _Pending:
    __slots__ = ("last", "quiet")

    def __init__(self) -> None:
        self.last: tuple[int, int] | None = None
        self.quiet = False


def _watchdog_handler(owner: ObservableDcmDir) -> Any:
    from watchdog.events import FileSystemEventHandler

    class Receiver(FileSystemEventHandler):
        """Turns watchdog events into candidates for the stability checker."""

        def on_created(self, event: Any) -> None:
            owner._candidate(event.src_path, event.is_directory)

        def on_modified(self, event: Any) -> None:
            if not event.is_directory:
                owner._candidate(event.src_path, False)

        def on_closed(self, event: Any) -> None:  # closed after writing: complete now
            owner._candidate(event.src_path, False, complete=True)

        def on_moved(self, event: Any) -> None:  # renamed into place: complete now
            owner._forget(event.src_path)
            owner._candidate(event.dest_path, event.is_directory, complete=True)

    return Receiver()


@define(kw_only=True)
class ObservableDcmDir(DcmDir, Observable, Acknowledging, Resuming, FromNow):
    """DcmDir that watches its folder (recursively) and emits FILE_ADDED with the file's path as data; with
    ``state_file`` it catches up on start with what changed since the last acknowledged file.

    Fields:
        polling_interval: Seconds between polls when use_polling is on (else watchdog's inotify events).
        settle_interval: Seconds a file's size must stay unchanged before it is reported (still being written).
    """

    event_types = (EventType.FILE_ADDED,)  # what routes may bind to (class attribute, not config)
    name: str = "ObsDcmDir"
    polling_interval: float = 1.0
    settle_interval: float = 0.25
    use_polling: bool = False  # watchdog PollingObserver, for network shares where inotify sees nothing
    state_file: str | None = None  # the persisted mark (default: $XDG_STATE_HOME/diana/folders/<hash of path>.json)
    from_now: bool = False  # keep no mark: a start announces only files that come later
    create: bool = False  # make a missing folder at start (else a mistyped path is an error, not a silent wait)
    _observer: Any = field(init=False, default=None, repr=False)
    _checker: threading.Thread | None = field(init=False, default=None, repr=False)
    _stopping: threading.Event = field(init=False, factory=threading.Event, repr=False)
    _events: queue.SimpleQueue = field(init=False, factory=queue.SimpleQueue, repr=False)
    _pending: dict[str, _Pending] = field(init=False, factory=dict, repr=False)
    _emitted: dict[str, tuple[int, int]] = field(init=False, factory=dict, repr=False)
    _lock: threading.Lock = field(init=False, factory=threading.Lock, repr=False)
    _waker: Any = field(init=False, default=None, repr=False)
    _unacked: dict[str, int] = field(init=False, factory=dict, repr=False)  # announced path -> its ctime (ns)
    _seen_at: dict[str, int] = field(init=False, factory=dict, repr=False)  # pending path -> first seen (ns)
    _recent: dict[str, int] = field(init=False, factory=dict, repr=False)  # acked path -> ctime, newer than mark
    _mark: int = field(init=False, default=0, repr=False)
    _caught_up: int = field(init=False, default=0, repr=False)
    _saved_at: float = field(init=False, default=0.0, repr=False)

    def set_waker(self, wake: Any) -> None:
        """Waking port: ``wake()`` is called whenever a file is announced."""
        self._waker = wake

    # --- lifecycle ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the observer and the stability checker threads are alive."""
        return bool(self._observer is not None and self._observer.is_alive()
                    and self._checker is not None and self._checker.is_alive())

    def _ensure_folder(self) -> None:
        if os.path.isdir(self.path):
            return
        if os.path.exists(self.path):
            raise ConfigError(f"{self.name}: {self.path!r} is a file, not a folder to watch")
        if not self.create:
            raise ConfigError(f"{self.name}: the folder {self.path!r} to watch does not exist (a typo?); create it, "
                              "or set create: true on the service")
        os.makedirs(self.path, exist_ok=True)

    def start(self) -> None:
        """Start watching (files present before the start are not announced); idempotent."""
        if self.running:
            return
        from watchdog.observers import Observer
        from watchdog.observers.api import BaseObserver
        from watchdog.observers.polling import PollingObserver

        self._ensure_folder()
        if self.state_file is None and not self.from_now:
            self.state_file = default_state_file("folders", os.path.abspath(self.path))
        self._stopping.clear()
        observer: BaseObserver
        if self.use_polling:
            observer = PollingObserver(timeout=self.polling_interval)
        else:
            observer = Observer()
        observer.schedule(_watchdog_handler(self), os.path.abspath(self.path), recursive=True)  # absolute event paths
        observer.daemon = True
        observer.start()
        self._observer = observer
        caught_up = self._caught_up = self._catch_up() if self.state_file else 0  # after the observer: no gap
        self._checker = threading.Thread(target=self._settle_loop, name=f"{self.name}-settle", daemon=True)
        self._checker.start()
        logger.info("%s watching its folder (%d files to catch up on)", self.name, caught_up)

    def resumes(self) -> bool:
        """Resuming port: files not acknowledged are announced again after a restart (unless ``from_now``)."""
        return not self.from_now

    def resume_summary(self) -> str:
        """Resuming port: start watching; how many files changed while no daemon watched (and where the mark is)."""
        self.start()
        if not self.state_file:
            return "from now on (no mark kept)"
        return f"{self._caught_up} file(s) changed since the last run (mark: {self.state_file})"

    def start_from_now(self) -> None:
        """FromNow port: keep no mark, announce only files that come later (before ``start``)."""
        self.from_now = True

    def stop(self) -> None:
        """Stop the observer and the checker and wait for both threads to end; safe to call twice."""
        self._stopping.set()
        if self.state_file and self._mark:
            self._save_mark(force=True)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)
            self._observer = None
        if self._checker is not None:
            self._checker.join(timeout=10)
            self._checker = None

    def changes(self, **kwargs: Any) -> list[Event]:
        """FILE_ADDED events since the last call (starts the watcher on the first call); never blocks."""
        self.start()
        out = []
        while True:
            try:
                out.append(self._events.get_nowait())
            except queue.Empty:
                return out

    # --- acknowledgements and the persisted mark -----------------------------------------------------
    def ack(self, event: Event) -> None:
        """The Watcher is done with this file: the mark may move past it."""
        path = os.fsdecode(event.data) if isinstance(event.data, (str, bytes, os.PathLike)) else None
        with self._lock:
            ctime = self._unacked.pop(path, None) if path else None
            if ctime is not None and path:
                self._recent[path] = ctime
        if self.state_file:
            self._save_mark()

    def _read_state(self) -> dict[str, Any] | None:
        if not self.state_file or not os.path.exists(self.state_file):
            return None
        try:
            with open(self.state_file, encoding="utf-8") as fh:
                data = json.load(fh)
            return {"mark": int(data["mark"]), "recent": {str(k): int(v) for k, v in data.get("recent", {}).items()}}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"service {self.name!r}: unreadable state file {self.state_file!r} ({exc})") from exc

    def _save_mark(self, force: bool = False) -> None:
        """Persist the mark (the oldest file not yet handled, else now less a slack) atomically; throttled."""
        now = time.monotonic()
        if not self.state_file or (not force and now - self._saved_at < _SAVE_EVERY):
            return
        self._saved_at = now
        with self._lock:
            open_times = [*self._unacked.values(), *self._seen_at.values()]
            mark = min([time.time_ns() - _SLACK_NS, *open_times])
            self._mark = mark if open_times else max(self._mark, mark)
            self._recent = {p: c for p, c in self._recent.items() if c >= self._mark - _SLACK_NS}
            state = {"mark": self._mark, "recent": dict(self._recent), "source": self.name}
        target = os.path.abspath(self.state_file)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", dir=os.path.dirname(target))
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(state, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def _catch_up(self) -> int:
        """Queue files changed since the persisted mark (a first start only sets the mark); returns how many."""
        state = self._read_state()
        if state is None:
            self._mark = time.time_ns()
            self._save_mark(force=True)
            return 0
        since = state["mark"] - _SLACK_NS
        self._mark, self._recent = state["mark"], state["recent"]
        found = 0
        stack = [os.path.abspath(self.path)]
        while stack:
            folder = stack.pop()
            try:
                changed = os.stat(folder).st_mtime_ns >= since
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif changed and entry.is_file(follow_symlinks=False):
                    try:
                        ctime = entry.stat().st_ctime_ns
                    except OSError:
                        continue
                    if ctime >= since and self._recent.get(entry.path) != ctime:
                        with self._lock:  # the mark stays before this file until it is handled
                            self._seen_at[entry.path] = ctime
                        self._candidate(entry.path, False)
                        found += 1
        self._save_mark(force=True)
        return found

    # --- watchdog callbacks (observer thread) ---------------------------------------------------------
    def _candidate(self, path: str | bytes, is_directory: bool, complete: bool = False) -> None:
        path = os.fsdecode(path)
        base = os.path.basename(path)
        if base.startswith(".") or base.lower().endswith(_TEMP_SUFFIXES):
            return  # in-progress temp files (ours and most receivers') are announced under their final name
        if is_directory:
            # a folder moved in arrives with its files and no event for each of them
            for file_path in self.files(path):
                self._candidate(file_path, False, complete=complete)
            return
        if complete:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                self._forget(path)
                return
            if st.st_size > 0:
                self._forget(path)
                self._announce([(path, (st.st_size, st.st_mtime_ns))])
                return
        with self._lock:
            state = self._pending.get(path)
            if state is None:
                state = self._pending[path] = _Pending()
                self._seen_at.setdefault(path, time.time_ns() - _SLACK_NS)
            state.quiet = False

    def _forget(self, path: str | bytes) -> None:
        with self._lock:
            self._pending.pop(os.fsdecode(path), None)
            self._seen_at.pop(os.fsdecode(path), None)

    # --- stability checker (its own thread) -----------------------------------------------------------
    def _settle_loop(self) -> None:
        while not self._stopping.wait(self.settle_interval):
            try:
                self._settle_once()
                self._save_mark()  # with state_file: the mark follows the clock while nothing is open
            except Exception:  # the checker must survive any one bad file
                logger.exception("%s stability check failed", self.name)

    def _settle_once(self) -> None:
        with self._lock:
            snapshot = list(self._pending.items())
        ready = []
        for path, state in snapshot:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                self._forget(path)
                continue
            now = (st.st_size, st.st_mtime_ns)
            with self._lock:
                if state.quiet and state.last == now and st.st_size > 0:
                    self._pending.pop(path, None)
                    ready.append((path, now))
                else:
                    state.last, state.quiet = now, True
        self._announce(ready)

    def _announce(self, ready: list[tuple[str, tuple[int, int]]]) -> None:
        """Queue FILE_ADDED for each (path, (size, mtime)) not yet announced in that state; wake the watcher."""
        fresh = False
        with self._lock:
            for path, stamp in ready:
                self._seen_at.pop(path, None)
                if self._emitted.get(path) == stamp:
                    continue
                if len(self._emitted) >= _EMITTED_MEMORY:
                    self._emitted.pop(next(iter(self._emitted)))
                self._emitted[path] = stamp
                if self.state_file:
                    try:
                        self._unacked[path] = os.stat(path).st_ctime_ns
                    except OSError:
                        self._unacked[path] = time.time_ns() - _SLACK_NS
                self._events.put(Event(event_type=EventType.FILE_ADDED, source_name=self.name, data=path,
                                       timestamp=time.time()))
                fresh = True
        if fresh and self._waker is not None:
            self._waker()
