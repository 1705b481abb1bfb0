"""The top-level elements the de-identification engine sets after its walk: the identifiers from the replacement
map, the (date, time) pairs shifted together, the file meta kept, and the de-identification method and its code
sequence; written as raw elements (the bytes pydicom would write) where the dataset came from little-endian bytes.
"""

from __future__ import annotations

import functools
from typing import Any

# file meta kept (the rest, e.g. Source/Sending/Receiving AE titles and private information, is removed)
META_KEEP = frozenset({0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013})
# (date, time) pairs shifted together so the day rolls over: Series, Acquisition, Content, InstanceCreation
DATE_TIME_PAIRS = ((0x00080021, 0x00080031), (0x00080022, 0x00080032), (0x00080023, 0x00080033),
                   (0x00080012, 0x00080013))

# the identifiers (keyword, tag) the replacement map is computed from and sets
ID_NUMBERS = (
    ("PatientName", 0x00100010), ("PatientID", 0x00100020), ("PatientBirthDate", 0x00100030),
    ("PatientAge", 0x00101010), ("PatientSex", 0x00100040), ("StudyDate", 0x00080020), ("StudyTime", 0x00080030),
    ("AccessionNumber", 0x00080050), ("StudyInstanceUID", 0x0020000D), ("SeriesInstanceUID", 0x0020000E),
    ("SOPInstanceUID", 0x00080018))
MAP_TAGS = dict(ID_NUMBERS)
MAP_VRS = {"PatientName": "PN", "PatientID": "LO", "PatientBirthDate": "DA", "PatientAge": "AS", "PatientSex": "CS",
           "StudyDate": "DA", "StudyTime": "TM", "AccessionNumber": "SH", "StudyInstanceUID": "UI",
           "SeriesInstanceUID": "UI", "SOPInstanceUID": "UI"}


CODES_TAG = 0x00120064  # DeidentificationMethodCodeSequence


def little_endian(ds: Any) -> bool | None:
    """True when ``ds`` was read from little-endian bytes (its new values may then be raw elements), else None."""
    implicit, little = getattr(ds, "original_encoding", (None, None))
    return True if little is True and implicit is not None else None


def set_text(ds: Any, tag: int, vr: str, value: str | list[str]) -> None:
    """Set a top-level string value. For a dataset read from little-endian bytes and plain ASCII text, as a raw
    element holding the bytes pydicom would write (joined by backslashes, padded with NUL for UI, else a space):
    the same file, without a DataElement made, validated and encoded for each of them."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import BaseTag

    old = ds._dict.get(tag)
    text = value if isinstance(value, str) else "\\".join(value)
    if little_endian(ds) and text.isascii() and (old is None or old.VR in (vr, None)):
        body = text.encode("ascii")
        if len(body) & 1:
            body += b"\x00" if vr == "UI" else b" "
        key = BaseTag(tag)
        ds._dict[key] = RawDataElement(key, vr, len(body), body, 0, bool(ds.original_encoding[0]), True)
    elif old is not None:
        ds[tag].value = value
    else:
        ds.add_new(tag, vr, value)


def code_item(value: str, meaning: str) -> Any:
    from pydicom.dataset import Dataset

    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
    return code


@functools.lru_cache(maxsize=64)
def codes_element(codes: tuple[tuple[str, str], ...], implicit: bool) -> Any:
    """DeidentificationMethodCodeSequence as a raw element: the bytes pydicom writes for the new sequence."""
    from pydicom.dataelem import DataElement, RawDataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element
    from pydicom.sequence import Sequence
    from pydicom.tag import BaseTag

    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, implicit
    write_data_element(fp, DataElement(CODES_TAG, "SQ", Sequence([code_item(v, m) for v, m in codes])))
    body = fp.getvalue()[8 if implicit else 12:]
    return RawDataElement(BaseTag(CODES_TAG), "SQ", len(body), body, 0, implicit, True)
