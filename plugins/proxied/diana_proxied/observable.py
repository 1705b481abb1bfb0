"""ObservableProxiedDicom: report studies (or series) that appear on a remote modality, by polling C-FIND.

Every call queries the last ``qperiod`` seconds (StudyDate + StudyTime, split at midnight); ``qperiod`` >>
``polling_interval`` so slow arrivals are not missed, and a history of recently seen UIDs suppresses repeats.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from attrs import define, field

from diana_core.dicom import DicomLevel
from diana_core.errors import ConfigError
from diana_core.polling import SeenHistory, new_in_window
from diana_core.ports import Event, EventType, Observable
from diana_proxied.endpoint import ProxiedDicom

logger = logging.getLogger(__name__)


def _level(value: DicomLevel | str | int) -> DicomLevel:
    return DicomLevel.from_label(value)


@define(kw_only=True)
class ObservableProxiedDicom(ProxiedDicom, Observable):
    """ProxiedDicom whose ``changes()`` emits STUDY_ADDED (SERIES_ADDED at series level) for new remote items.

    Fields:
        polling_interval: Seconds between C-FIND polls of the PACS.
        query: Extra C-FIND match keys (e.g. {Modality: CT}).
        qlevel: studies or series: the level new items are reported at.
        qperiod: Seconds of the StudyDate/StudyTime window each poll asks for (crossing midnight handled).
        history_len: How many recent UIDs are remembered to report each item once.
    """

    event_types = (EventType.STUDY_ADDED, EventType.SERIES_ADDED)
    name: str = "ObservableProxiedDicom"
    polling_interval: float = 180.0
    query: dict[str, Any] = field(factory=dict)
    qlevel: DicomLevel = field(default=DicomLevel.STUDIES, converter=_level)
    qperiod: float = 600.0
    history_len: int = 200
    _history: SeenHistory = field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.qlevel not in (DicomLevel.STUDIES, DicomLevel.SERIES):
            raise ConfigError(f"service {self.name!r}: qlevel must be studies or series")
        if self.history_len < 1 or self.qperiod <= 0:
            raise ConfigError(f"service {self.name!r}: history_len and qperiod must be positive")
        self._history = SeenHistory(self.history_len)

    def _remember(self, key: str) -> bool:
        """True if ``key`` is new (and remember it; the oldest drops out after ``history_len``)."""
        return self._history.add(key)

    def changes(self, now: datetime | None = None, **kwargs: Any) -> list[Event]:
        """C-FIND the window ending ``now`` and emit an event per item not seen in the history."""
        events = new_in_window(self.find, self.query, self.qlevel, self.qperiod, self._history, self.name, now)
        if events:
            logger.info("%s: %d new %s on %s", self.name, len(events), self.qlevel, self.proxy_domain)
        return events
