"""A source that reaches a DICOM modality through an Orthanc-like endpoint: the original collector's
``run(..., source=orthanc, domain="pacs")``, which queried and C-MOVEd studies from that modality.

``ModalitySource(source, domain)`` is a ``StudyRetriever``: ``find`` queries the modality (C-FIND via the source),
``retrieve_study`` C-MOVEs one study into the source, ``release_study`` deletes that copy afterwards — only a copy
it made (a study the source already held is never deleted).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from diana_core.dicom import DicomLevel, orthanc_id
from diana_core.dixel import Dixel
from diana_core.errors import NotFound

# what a C-FIND must ask for so a worklist answer can be resolved, named and pseudonymized
STUDY_KEYS = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyInstanceUID",
              "StudyDate", "StudyTime", "StudyDescription")


class ModalitySource:
    """Query/retrieve on modality ``domain`` of ``source``; every other call goes to ``source`` itself."""

    def __init__(self, source: Any, domain: str) -> None:
        self.source = source
        self.domain = domain
        self.name = f"{getattr(source, 'name', 'source')}/{domain}"
        self._retrieved: set[str] = set()
        self._lock = threading.Lock()

    def __getattr__(self, attr: str) -> Any:  # get, delete, anonymize, exists ... are the source's
        return getattr(self.source, attr)

    def find(self, query: Mapping[str, Any], level: Any = DicomLevel.STUDIES, **kwargs: Any) -> list[Dixel]:
        """C-FIND on the modality, asking for the identifiers a study needs."""
        wanted = {key: "" for key in STUDY_KEYS} | {k: v for k, v in dict(query).items() if v is not None}
        return list(self.source.find(wanted, level=level, domain=self.domain))

    def retrieve_study(self, study: Dixel) -> Dixel:
        """C-MOVE the study into the source unless it is already there; the item the source can ``get``."""
        uid, pid = str(study.tag("StudyInstanceUID") or ""), str(study.tag("PatientID") or "")
        local = Dixel(tags=dict(study.tags), level=DicomLevel.STUDIES)
        oid = orthanc_id(pid, uid)
        if self.source.exists(oid, level=DicomLevel.STUDIES):
            return local
        if not self.source.find({"StudyInstanceUID": uid}, level=DicomLevel.STUDIES, domain=self.domain,
                                retrieve=True):
            raise NotFound(f"{self.name}: the study is no longer on the modality")
        with self._lock:
            self._retrieved.add(oid)
        return local

    def release_study(self, study: Dixel) -> None:
        """Delete the copy ``retrieve_study`` made (nothing else)."""
        oid = orthanc_id(str(study.tag("PatientID") or ""), str(study.tag("StudyInstanceUID") or ""))
        with self._lock:
            if oid not in self._retrieved:
                return
            self._retrieved.discard(oid)
        self.source.delete(oid, level=DicomLevel.STUDIES)
