"""ObservableProxiedDicom: report studies (or series) that appear on a remote modality, by polling C-FIND.

Every call queries the last ``qperiod`` seconds (StudyDate + StudyTime, split at midnight); ``qperiod`` >>
``polling_interval`` so slow arrivals are not missed, and a history of recently seen UIDs suppresses repeats
(``diana_core.polling.RecentWindowPolling``, shared with ObservableDicomWeb).
"""

from __future__ import annotations

from attrs import define

from diana_core.polling import RecentWindowPolling
from diana_proxied.endpoint import ProxiedDicom


@define(kw_only=True)
class ObservableProxiedDicom(RecentWindowPolling, ProxiedDicom):
    """ProxiedDicom whose ``changes()`` emits STUDY_ADDED (SERIES_ADDED at series level) for new remote items.

    Fields:
        polling_interval: Seconds between C-FIND polls of the PACS.
        query: Extra C-FIND match keys (e.g. {Modality: CT}).
        qlevel: studies or series: the level new items are reported at.
        qperiod: Seconds of the StudyDate/StudyTime window each poll asks for (crossing midnight handled).
        history_len: How many recent UIDs are remembered to report each item once.
    """

    name: str = "ObservableProxiedDicom"

    def __attrs_post_init__(self) -> None:
        self._start_polling()

    def _polled_where(self) -> str:
        return f" on {self.proxy_domain}"
