"""Instances that may show identifying pixels: why (the header says so), and what happens to them.

Without the ``clean-pixels`` profile option an at-risk instance is held back (``Quarantined``), kept in the job's
quarantine folder for review when the job has one; with it, the installed pixel cleaner (found through the plugin
manager, see ``diana_core.pixels``) blanks the burned-in identifiers and the instance goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from diana_core.dicom import orthanc_id
from diana_core.errors import ValidationError
from diana_core.pseudonym import Pseudonymizer

_PIXEL_DATA = 0x7FE00010
_SECONDARY_CAPTURE = frozenset({"1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.7.1",
                                "1.2.840.10008.5.1.4.1.1.7.2", "1.2.840.10008.5.1.4.1.1.7.3",
                                "1.2.840.10008.5.1.4.1.1.7.4"})
_SCREEN_MODALITIES = frozenset({"US", "IVUS", "XC", "OT", "SC", "ES", "GM", "SM", "DOC"})


def header_text(ds: Any, tag: int) -> str | None:
    """A top-level value as text, read from the raw bytes when they are plain ASCII (no conversion, no charset)."""
    elem = ds._dict.get(tag)
    if elem is None:
        return None
    raw = elem.value
    # ISO 2022 text is 7-bit too: an escape byte means a charset switch, left to pydicom's decoder
    if type(elem).__name__ == "RawDataElement" and isinstance(raw, bytes) and raw.isascii() and b"\x1b" not in raw:
        return raw.decode("ascii").strip(" \x00")
    value = ds[tag].value
    return "" if value is None else str(value)


class Quarantined(ValidationError):
    """The instance may show identifying pixels (burned-in annotation): kept back, not delivered."""


def hold_back(ds: Any, pz: Pseudonymizer, name: str, tags: Mapping[str, str], reason: str) -> Quarantined:
    """Record (and, with a job's quarantine store, keep for review) an instance that is not delivered."""
    from diana_dcmdir.reading import dataset_bytes

    study = orthanc_id(tags.get("PatientID", ""), tags.get("StudyInstanceUID", ""))
    pz.report.quarantine(name, reason, study=study)
    store = pz.report.store
    if store is None:
        return Quarantined(f"{name}: quarantined, may show identifying pixels ({reason}); the profile option "
                           "clean-pixels cleans such images")
    qid = _instance_id(tags)
    store.keep(qid, dataset_bytes(ds), reason, study=study)
    return Quarantined(f"{name}: quarantined as {qid[:13]}, may show identifying pixels ({reason}); {store.hint()}")


def _instance_id(tags: Mapping[str, str]) -> str:
    return orthanc_id(tags.get("PatientID", ""), tags.get("StudyInstanceUID", ""),
                      tags.get("SeriesInstanceUID", ""), tags.get("SOPInstanceUID", ""))


def clean_pixels(ds: Any, pz: Pseudonymizer, name: str, tags: Mapping[str, str], reason: str) -> None:
    """Clean an at-risk instance's pixels in place with the installed cleaner (clean-pixels option), or hold it
    back (``Quarantined``) when its pixels cannot be decoded; ConfigError when no cleaner is installed."""
    from diana_core.plugins import get_plugin_manager

    cleaner = get_plugin_manager().pixel_cleaner()
    try:
        result = cleaner.clean(ds, name)
    except ValidationError as exc:
        raise hold_back(ds, pz, name, tags, f"{reason}; not cleaned: {str(exc).removeprefix(name + ': ')}") from None
    study = orthanc_id(tags.get("PatientID", ""), tags.get("StudyInstanceUID", ""))
    qid = _instance_id(tags)
    pz.report.clean(qid, len(result.boxes), len(result.rules), study=study)
    store = pz.report.store
    if store is not None and store.keep_cleaned:  # for review: the cleaned first frame, boxes in the record
        from diana_dcmdir.quarantine_sheet import preview_png

        store.keep_preview(qid, preview_png(ds), reason, study=study, boxes=[b.asdict() for b in result.boxes])


def burned_in_reason(ds: Any) -> str | None:
    """Why the instance may carry identifying pixels (None when it says "NO" or is an ordinary image)."""
    return reason(lambda tag: tag in ds._dict, lambda tag: header_text(ds, tag))


def reason(has: Callable[[int], bool], text: Callable[[int], str | None]) -> str | None:
    """``burned_in_reason`` from a top-level presence test and ``header_text`` (shared by the raw-bytes engine)."""
    if not has(_PIXEL_DATA):
        return None
    flag = (text(0x00280301) or "").strip().upper()  # BurnedInAnnotation
    if flag == "YES":
        return "BurnedInAnnotation is YES"
    if flag == "NO":
        return None
    if (text(0x00080016) or "") in _SECONDARY_CAPTURE or has(0x00080064):  # SOPClassUID, ConversionType
        return "secondary capture without BurnedInAnnotation NO"
    modality = (text(0x00080060) or "").upper()
    if modality in _SCREEN_MODALITIES:
        return f"{modality} image without BurnedInAnnotation NO"
    if "SCREEN" in (text(0x00080008) or "").upper():  # ImageType values, backslash-joined
        return "screen capture without BurnedInAnnotation NO"
    return None
