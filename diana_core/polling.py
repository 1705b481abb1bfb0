"""Polling a query/retrieve source for what is new: the recent-window query and the history that suppresses repeats.

Shared by the observables that poll (ObservableProxiedDicom over C-FIND, ObservableDicomWeb over QIDO-RS): each call
queries the last ``qperiod`` seconds (StudyDate + StudyTime ranges, split at midnight) and emits one event per study
(or series) UID not among the last ``history_len`` seen. ``RecentWindowPolling`` holds their common fields and
``changes()``.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from attrs import define, field

from diana_core.dicom import DicomLevel
from diana_core.dicom.windows import recent_window_queries
from diana_core.dixel import Dixel
from diana_core.errors import ConfigError
from diana_core.ports import Endpoint, Event, EventType, Observable


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


def _level(value: DicomLevel | str | int) -> DicomLevel:
    return DicomLevel.from_label(value)


# not slotted: mixed into slotted endpoints (two slotted bases cannot share one instance layout); the Observable
# base already gives these instances a __dict__
@define(kw_only=True, slots=False)
class RecentWindowPolling(Observable):
    """The fields and ``changes()`` of an Observable that polls its own ``find`` for what is new in a recent window.
    Mixed into an Endpoint, which provides ``name`` and ``find`` (listed before it among the bases, so that the
    endpoint's fields come first); the class's ``__attrs_post_init__`` calls ``_start_polling()``. Emits
    STUDY_ADDED, or SERIES_ADDED at series level."""

    event_types = (EventType.STUDY_ADDED, EventType.SERIES_ADDED)
    polling_interval: float = 180.0
    query: dict[str, Any] = field(factory=dict)
    qlevel: DicomLevel = field(default=DicomLevel.STUDIES, converter=_level)
    qperiod: float = 600.0
    history_len: int = 200
    _history: SeenHistory = field(init=False, repr=False, eq=False)

    def _start_polling(self) -> None:
        """Check the polling fields (a ConfigError naming the service) and start an empty history."""
        name = cast(Endpoint, self).name
        if self.qlevel not in (DicomLevel.STUDIES, DicomLevel.SERIES):
            raise ConfigError(f"service {name!r}: qlevel must be studies or series")
        if self.history_len < 1 or self.qperiod <= 0:
            raise ConfigError(f"service {name!r}: history_len and qperiod must be positive")
        self._history = SeenHistory(self.history_len)

    def _remember(self, key: str) -> bool:
        """True if ``key`` is new (and remember it; the oldest drops out after ``history_len``)."""
        return self._history.add(key)

    def _polled_where(self) -> str:
        """Words naming what is polled, for the log line (e.g. " on CT1"); "" by default."""
        return ""

    def changes(self, now: datetime | None = None, **kwargs: Any) -> list[Event]:
        """Query the window ending ``now`` and emit an event per item not seen in the history."""
        endpoint = cast(Endpoint, self)  # what this is mixed into
        events = new_in_window(endpoint.find, self.query, self.qlevel, self.qperiod, self._history, endpoint.name,
                               now)
        if events:  # logged under the concrete class's module, as each observable did on its own
            logging.getLogger(type(self).__module__).info("%s: %d new %s%s", endpoint.name, len(events), self.qlevel,
                                                          self._polled_where())
        return events
