"""C-FIND/C-MOVE/C-GET identifiers from Diana queries, and C-FIND answers as Dixels.

A query is a mapping of DICOM keywords to values (any key the peer supports; wildcards and ranges as DICOM allows)
or a Dixel (queried by its UIDs down to the level). Each level asks for the keys that name an item, so answers can
be retrieved and given Orthanc-style ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel
from diana_core.errors import ValidationError

QR_LEVEL = {DicomLevel.PATIENTS: "PATIENT", DicomLevel.STUDIES: "STUDY", DicomLevel.SERIES: "SERIES",
            DicomLevel.INSTANCES: "IMAGE"}

RETURN_KEYS: dict[DicomLevel, tuple[str, ...]] = {
    DicomLevel.PATIENTS: ("PatientID", "PatientName", "PatientBirthDate", "PatientSex"),
    DicomLevel.STUDIES: ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
                         "AccessionNumber", "StudyDate", "StudyTime", "StudyDescription", "ModalitiesInStudy",
                         "NumberOfStudyRelatedInstances"),
    DicomLevel.SERIES: ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber",
                        "SeriesDescription", "NumberOfSeriesRelatedInstances"),
    DicomLevel.INSTANCES: ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
                           "InstanceNumber"),
}
UID_KEYS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
LEVEL_KEY = {DicomLevel.PATIENTS: "PatientID", DicomLevel.STUDIES: "StudyInstanceUID",
             DicomLevel.SERIES: "SeriesInstanceUID", DicomLevel.INSTANCES: "SOPInstanceUID"}
_DROP = {"QueryRetrieveLevel", "RetrieveAETitle", "SpecificCharacterSet"}


def _is_orthanc_id(text: str) -> bool:
    return len(text) == 44 and text.count("-") == 4


def query_of(where: str, item: Any, level: DicomLevel) -> dict[str, Any]:
    """Query keys for an item: a mapping as given, a Dixel by its UIDs, a str as the UID of ``level``."""
    if isinstance(item, Dixel):  # its own UIDs (a study Dixel asked at series level lists the study's series)
        own = min(item.level, level)
        keys = UID_KEYS[1: int(own)] if own > DicomLevel.PATIENTS else ("PatientID",)
        query = {k: str(item.tag(k)) for k in keys if item.tag(k)}
        if LEVEL_KEY[own] not in query:
            raise ValidationError(f"{where}: item {item.summary()['id']} has no {LEVEL_KEY[own]} to query by")
        return query
    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, str) and item.strip():
        if _is_orthanc_id(item):
            raise ValidationError(f"{where}: {item} looks like an Orthanc id; a DICOM node is asked by "
                                  f"{LEVEL_KEY[level]} (or a query)")
        return {LEVEL_KEY[level]: item.strip()}
    raise ValidationError(f"{where}: query by a Dixel, a UID or a mapping of DICOM keywords, not {type(item).__name__}")


def identifier(where: str, query: Mapping[str, Any], level: DicomLevel, return_keys: bool = True) -> Any:
    """A pydicom Dataset: QueryRetrieveLevel, the level's return keys (empty) and the query's keys."""
    from pydicom import Dataset
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    ds = Dataset()
    ds.QueryRetrieveLevel = QR_LEVEL[level]
    if return_keys:
        for key in RETURN_KEYS[level]:
            setattr(ds, key, "")
    for key, value in query.items():
        tag = tag_for_keyword(str(key))
        if tag is None:
            raise ValidationError(f"{where}: {key!r} is not a DICOM keyword")
        if value is None:
            value = ""
        elif isinstance(value, (list, tuple)):
            value = [str(v) for v in value]
        elif not isinstance(value, str) and dictionary_VR(tag) not in ("US", "UL", "SS", "SL", "FL", "FD"):
            value = str(value)
        try:
            setattr(ds, str(key), value)
        except (ValueError, TypeError) as exc:
            raise ValidationError(f"{where}: bad value for query key {key}: {exc}") from None
    return ds


def answer_dixel(ds: Any, level: DicomLevel) -> Dixel:
    """A C-FIND answer as a Dixel of ``level`` (empty and bookkeeping elements dropped)."""
    for elem in list(ds):
        if elem.keyword in _DROP or elem.value in ("", None) or (elem.VR != "SQ" and elem.value == []):
            del ds[elem.tag]
    dixel = Dixel.from_pydicom(ds)
    dixel.level = level
    return dixel
