"""ObservableOrthanc: an Orthanc endpoint that reports its change log (``/changes``) as Diana events.

The cursor lives in a JSON file written atomically. It only moves past a change once the Watcher acknowledged
every event up to it (``ack``: handled or dead-lettered), so a killed daemon restarts at the oldest unfinished event:
nothing is skipped; events handled but not yet acknowledged are delivered again (at least once).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from attrs import define, field

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel
from diana_core.errors import ConfigError
from diana_core.ports import Acknowledging, Event, EventType, Observable
from diana_orthanc.endpoint import Orthanc

logger = logging.getLogger(__name__)

CHANGE_EVENTS: dict[str, tuple[EventType, DicomLevel]] = {
    "NewInstance": (EventType.INSTANCE_ADDED, DicomLevel.INSTANCES),
    "NewSeries": (EventType.SERIES_ADDED, DicomLevel.SERIES),
    "NewStudy": (EventType.STUDY_ADDED, DicomLevel.STUDIES),
    "NewPatient": (EventType.PATIENT_ADDED, DicomLevel.PATIENTS),
    "StableSeries": (EventType.SERIES_STABLE, DicomLevel.SERIES),
    "StableStudy": (EventType.STUDY_STABLE, DicomLevel.STUDIES),
}


@define(kw_only=True)
class ObservableOrthanc(Orthanc, Observable, Acknowledging):
    """Orthanc whose ``changes()`` returns new INSTANCE/SERIES/STUDY_ADDED and SERIES/STUDY_STABLE events.

    Start point: the cursor in ``persist_file`` if it exists, else ``start_from_change``, else the newest change now.

    Fields:
        start_from_change: Change number to start from when there is no persist_file (default: now).
        persist_file: File keeping the /changes cursor, so a restart catches up with what arrived meanwhile.
        page_size: Changes read per request.
    """

    event_types = (EventType.INSTANCE_ADDED, EventType.SERIES_ADDED, EventType.STUDY_ADDED, EventType.SERIES_STABLE,
                   EventType.STUDY_STABLE)
    name: str = "ObservableOrthanc"
    polling_interval: float = 0.25  # an idle /changes poll is one tiny request; a change is handled within ~0.3 s
    start_from_change: int | None = None
    persist_file: str | None = None
    page_size: int = 1000
    _current: int | None = field(default=None, init=False, repr=False, eq=False)  # last change read
    _unacked: set[int] = field(factory=set, init=False, repr=False, eq=False)  # Seq of events returned, not acked
    _saved: int | None = field(default=None, init=False, repr=False, eq=False)  # the cursor on disk

    def __attrs_post_init__(self) -> None:
        if self.page_size < 1:
            raise ConfigError(f"service {self.name!r}: page_size must be >= 1")

    # --- cursor ----------------------------------------------------------------------------------
    def _read_cursor(self) -> int | None:
        if not self.persist_file or not os.path.exists(self.persist_file):
            return None
        try:
            data = json.loads(Path(self.persist_file).read_text(encoding="utf-8"))
            return int(data["last_change"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"service {self.name!r}: unreadable cursor file {self.persist_file!r} ({exc})") from exc

    def _write_cursor(self, value: int) -> None:
        if not self.persist_file:
            return
        target = Path(self.persist_file)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"last_change": value, "source": self.name}, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @property
    def current_change(self) -> int:
        """The last change already reported (the cursor); resolved on first use."""
        if self._current is None:
            persisted = self._read_cursor()
            if persisted is not None:
                self._current = persisted
            elif self.start_from_change is not None:
                self._current = int(self.start_from_change)
            else:
                self._current = self.gateway.last_change()
            logger.info("%s: watching changes after #%d", self.name, self._current)
        return self._current

    def set_current_change(self, value: int) -> None:
        """Move the cursor (and persist it); events not acknowledged yet are forgotten."""
        self._current = int(value)
        self._unacked.clear()
        self._save(self._current)

    def _save(self, value: int) -> None:
        if value != self._saved:
            self._write_cursor(value)
            self._saved = value

    def _acked_upto(self) -> int:
        """The highest change such that every event at or before it was acknowledged."""
        return min(self._unacked) - 1 if self._unacked else self.current_change

    def ack(self, event: Event) -> None:
        """The event was handled or dead-lettered: persist the cursor up to the oldest event still open."""
        if isinstance(event.event_id, int):
            self._unacked.discard(event.event_id)
        self._save(self._acked_upto())

    # the original's cursor methods, as aliases of the above
    def persist_current_change(self) -> None:
        """Write the cursor to ``persist_file`` now."""
        self._write_cursor(self.current_change)

    def persist_last_change(self) -> int:
        """Skip to Orthanc's newest change (nothing before it will be reported) and persist; returns it."""
        self.set_current_change(self.gateway.last_change())
        return self.current_change

    def set_persist_file(self, path: str | os.PathLike[str] | None = None) -> str | None:
        """Use ``path`` for the cursor (re-read on next use); returns the file in use."""
        if path is not None:
            self.persist_file = os.fspath(path)
            self._current = None
        return self.persist_file

    # --- Observable ----------------------------------------------------------------------------------
    def changes(self, **kwargs: Any) -> list[Event]:
        """Events for every change after the last one read, in pages; the persisted cursor waits for ``ack``."""
        cursor = self.current_change
        start = cursor
        events: list[Event] = []
        while True:
            page = self.gateway.changes(cursor, self.page_size)
            for change in page.get("Changes", []):
                cursor = max(cursor, int(change["Seq"]))
                kind = CHANGE_EVENTS.get(change.get("ChangeType", ""))
                if kind is None:
                    continue
                event_type, level = kind
                dixel = Dixel(meta={"ID": change["ID"], "ChangeSeq": change["Seq"], "Path": change.get("Path")},
                              level=level)
                events.append(Event(event_type=event_type, source_name=self.name, data=dixel,
                                    event_id=int(change["Seq"])))
                self._unacked.add(int(change["Seq"]))
            if page.get("Done", True) or not page.get("Changes"):
                break
        self._current = cursor
        if self._saved is None:
            self._saved = self._read_cursor()
        self._save(self._acked_upto())  # changes that are no event (deletions...) move the cursor at once
        if events:
            logger.info("%s: %d events (changes #%d-#%d)", self.name, len(events), start + 1, cursor)
        return events

    def stop(self) -> None:
        """Nothing runs in the background; closes the HTTP session."""
        if self._gateway is not None:
            self._gateway.close()
