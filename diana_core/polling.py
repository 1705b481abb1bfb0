"""Polling a query/retrieve source for what is new: the recent-window query and the history that suppresses repeats.

Shared by the observables that poll (ObservableProxiedDicom over C-FIND, ObservableDicomWeb over QIDO-RS): each call
queries the last ``qperiod`` seconds (StudyDate + StudyTime ranges, split at midnight) and emits one event per study
(or series) UID not among the last ``history_len`` seen.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from diana_core.dicom import DicomLevel
from diana_core.dicom.windows import recent_window_queries
from diana_core.dixel import Dixel
from diana_core.ports import Event, EventType


class SeenHistory:
    """The last ``size`` keys seen; ``add`` says whether a key is new (the oldest drops out)."""

    def __init__(self, size: int) -> None:
        self._order: collections.deque[str] = collections.deque(maxlen=size)
        self._seen: set[str] = set()

    def add(self, key: str) -> bool:
        if key in self._seen:
            return False
        if len(self._order) == self._order.maxlen:
            self._seen.discard(self._order[0])
        self._order.append(key)
        self._seen.add(key)
        return True


def new_in_window(find: Callable[..., Iterable[Dixel]], query: Mapping[str, Any], level: DicomLevel, qperiod: float,
                  history: SeenHistory, source_name: str, now: datetime | None = None) -> list[Event]:
    """Query the window ending ``now`` with ``find(query, level=)``; an ADDED event per item not in ``history``."""
    key = "SeriesInstanceUID" if level == DicomLevel.SERIES else "StudyInstanceUID"
    etype = EventType.SERIES_ADDED if level == DicomLevel.SERIES else EventType.STUDY_ADDED
    events = []
    for window in recent_window_queries(qperiod, now):
        for dixel in find({**query, **window}, level=level):
            uid = dixel.tag(key)
            if uid and history.add(str(uid)):
                events.append(Event(event_type=etype, source_name=source_name, data=dixel))
    return events
