"""ObservableDcmDir: a DcmDir that reports FILE_ADDED once per completed file, via a watchdog observer.

A file is complete, and announced at once, when its writer closes it after writing (inotify's close-write) or when
it is renamed into the folder (how DICOM receivers finish a file). Files seen only as created/modified (network
shares, polling observers) are announced by a background thread after their size and mtime stayed the same across
two checks with no event in between, so a slow writer never yields a half file and one slow file never holds back
the others. Each announcement wakes the watcher (``Waking`` port): no waiting for its next poll.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from typing import Any

from attrs import define, field

from diana_core import Event, EventType, Observable
from diana_dcmdir.dcmdir import DcmDir

logger = logging.getLogger(__name__)

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
class ObservableDcmDir(DcmDir, Observable):
    """DcmDir that watches its folder (recursively) and emits FILE_ADDED with the file's path as data."""

    event_types = (EventType.FILE_ADDED,)  # what routes may bind to (class attribute, not config)
    name: str = "ObsDcmDir"
    polling_interval: float = 1.0
    settle_interval: float = 0.25
    use_polling: bool = False  # watchdog PollingObserver, for network shares where inotify sees nothing
    _observer: Any = field(init=False, default=None, repr=False)
    _checker: threading.Thread | None = field(init=False, default=None, repr=False)
    _stopping: threading.Event = field(init=False, factory=threading.Event, repr=False)
    _events: queue.SimpleQueue = field(init=False, factory=queue.SimpleQueue, repr=False)
    _pending: dict[str, _Pending] = field(init=False, factory=dict, repr=False)
    _emitted: dict[str, tuple[int, int]] = field(init=False, factory=dict, repr=False)
    _lock: threading.Lock = field(init=False, factory=threading.Lock, repr=False)
    _waker: Any = field(init=False, default=None, repr=False)

    def set_waker(self, wake: Any) -> None:
        """Waking port: ``wake()`` is called whenever a file is announced."""
        self._waker = wake

    # --- lifecycle ------------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while the observer and the stability checker threads are alive."""
        return bool(self._observer is not None and self._observer.is_alive()
                    and self._checker is not None and self._checker.is_alive())

    def start(self) -> None:
        """Start watching (files present before the start are not announced); idempotent."""
        if self.running:
            return
        from watchdog.observers import Observer
        from watchdog.observers.api import BaseObserver
        from watchdog.observers.polling import PollingObserver

        os.makedirs(self.path, exist_ok=True)
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
        self._checker = threading.Thread(target=self._settle_loop, name=f"{self.name}-settle", daemon=True)
        self._checker.start()
        logger.info("%s watching its folder", self.name)

    def stop(self) -> None:
        """Stop the observer and the checker and wait for both threads to end; safe to call twice."""
        self._stopping.set()
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
            state.quiet = False

    def _forget(self, path: str | bytes) -> None:
        with self._lock:
            self._pending.pop(os.fsdecode(path), None)

    # --- stability checker (its own thread) -----------------------------------------------------------
    def _settle_loop(self) -> None:
        while not self._stopping.wait(self.settle_interval):
            try:
                self._settle_once()
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
                if self._emitted.get(path) == stamp:
                    continue
                if len(self._emitted) >= _EMITTED_MEMORY:
                    self._emitted.pop(next(iter(self._emitted)))
                self._emitted[path] = stamp
                self._events.put(Event(event_type=EventType.FILE_ADDED, source_name=self.name, data=path,
                                       timestamp=time.time()))
                fresh = True
        if fresh and self._waker is not None:
            self._waker()
