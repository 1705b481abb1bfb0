"""ObservableDicomWeb: report studies (or series) that appear on a DICOMweb archive, by polling QIDO-RS.

Like ObservableProxiedDicom (both are ``diana_core.polling.RecentWindowPolling``): every call queries the last
``qperiod`` seconds (StudyDate + StudyTime ranges, split at midnight), and a history of recently seen UIDs suppresses
repeats; ``qperiod`` >> ``polling_interval``.
"""

from __future__ import annotations

from attrs import define

from diana_core.polling import RecentWindowPolling
from diana_dicomweb.endpoint import DicomWeb


@define(kw_only=True)
class ObservableDicomWeb(RecentWindowPolling, DicomWeb):
    """DicomWeb whose ``changes()`` emits STUDY_ADDED (SERIES_ADDED at series level) for new items.

    Fields:
        polling_interval: Seconds between QIDO polls.
        query: Extra QIDO match keys (e.g. {Modality: CT}).
        qlevel: studies or series: the level new items are reported at.
        qperiod: Seconds of the StudyDate/StudyTime window each poll asks for.
        history_len: How many recent UIDs are remembered to report each item once.
    """

    name: str = "ObservableDicomWeb"

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._start_polling()
