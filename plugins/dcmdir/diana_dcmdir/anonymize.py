"""Local pseudonymization of pydicom datasets with the shared ``Pseudonymizer`` plan (see annex_e.py).

Identifiers come from ``Pseudonymizer.replacement_map`` so a DcmDir and an Orthanc backend produce the same
PatientID/Name/UIDs/dates; every other non-standard UID goes through ``remap_uid`` (same input, same output, in
every file and every run); dates and times move by the patient's TimeOffset; sequences are walked recursively.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from attrs import define, field

from diana_core.dicom import DicomLevel
from diana_core.errors import ValidationError
from diana_core.guid import ShamIdentity
from diana_core.pseudonym import Pseudonymizer, shift_date, shift_datetime
from diana_dcmdir import annex_e

_DICOM_ROOT = "1.2.840.10008."
_ID_TAGS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientAge", "PatientSex", "StudyDate", "StudyTime",
    "AccessionNumber", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
)
_PATIENT_ID, _ACCESSION, _BIRTH_DATE = 0x00100020, 0x00080050, 0x00100030
# removed even under the modified-dates option: no longitudinal value, only identifying
_NEVER_SHIFTED = frozenset({0x00100032, 0x001021D0})  # PatientBirthTime, LastMenstrualDate


def identifying_tags(ds: Any) -> dict[str, str]:
    """The top-level values the replacement map is computed from (as strings)."""
    out = {}
    for key in _ID_TAGS:
        value = ds.get(key)
        if value not in (None, ""):
            out[key] = str(value)
    return out


_IDENTITY_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientAge", "PatientSex", "StudyDate")


@define
class CachingPseudonymizer(Pseudonymizer):
    """A Pseudonymizer that remembers each patient's sham identity (the costly part: name lists, digests)."""

    _identities: dict[tuple[str, ...], ShamIdentity] = field(init=False, factory=dict, repr=False)

    def identity(self, tags: Mapping[str, Any]) -> ShamIdentity:
        key = tuple(str(tags.get(k) or "") for k in _IDENTITY_KEYS)
        sham = self._identities.get(key)
        if sham is None:
            if len(self._identities) >= 10_000:
                self._identities.clear()
            sham = self._identities[key] = super().identity(tags)
        return sham


class _Context:
    """What one dataset's walk needs: the uid map, the time offset, the replacement values."""

    def __init__(self, pseudonymizer: Pseudonymizer, tags: Mapping[str, str], new: Mapping[str, str],
                 offset: timedelta) -> None:
        self.pz = pseudonymizer
        self.offset = offset
        self.uids = {tags[k]: new[k] for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
                     if k in tags and k in new}
        self.patient_id = (tags.get("PatientID"), new["PatientID"])
        self.accession = (tags.get("AccessionNumber"), new.get("AccessionNumber"))

    def uid(self, value: str) -> str:
        value = str(value).strip("\x00 ")
        if not value or value.startswith(_DICOM_ROOT):
            return value
        new = self.uids.get(value)
        if new is None:
            new = self.uids[value] = self.pz.remap_uid(value)
        return new

    def date(self, value: str) -> str:
        return shift_date(str(value), self.offset) if value else value

    def time(self, value: str) -> str:
        text = str(value)
        if not text:
            return text
        return shift_datetime("19700102", text, self.offset)[1]

    def datetime(self, value: str) -> str:
        text = str(value)
        if len(text) < 8:
            return ""
        digits = re.match(r"\d*", text).group(0)  # type: ignore[union-attr]
        da, tm = shift_datetime(digits[:8], digits[8:14] or None, self.offset)
        return da + tm[: max(len(digits) - 8, 0)] if da else ""


def _dummy(vr: str) -> Any:
    """A dummy value valid for the VR (D action)."""
    if vr in ("IS", "DS"):
        return "0"
    if vr in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"):
        return 0
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        return b""
    if vr == "AS":
        return "000Y"
    if vr in ("AE", "CS", "SH"):
        return annex_e.DUMMY_VALUE[:16]
    return annex_e.DUMMY_VALUE


def _map_value(value: Any, fn: Any) -> Any:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [fn(v) for v in value]
    return fn(value)


def _walk(ds: Any, ctx: _Context, table: Mapping[int, str], top: bool = False) -> None:
    """Apply the profile to one (nested) dataset in place; map values are set on the top level afterwards."""
    for tag in list(ds.keys()):
        t = int(tag)
        group = t >> 16
        if group & 1 or 0x5000 <= group <= 0x50FF or (0x6000 <= group <= 0x60FF and t & 0xFFFF in (0x3000, 0x4000)):
            del ds[tag]  # private tags, curves, overlay data and comments
            continue
        action = table.get(t)
        if action in ("X", "Z", "D") and t not in _NEVER_SHIFTED and ds[tag].VR in ("DA", "DT", "TM"):
            action = None  # modified dates option: dates and times are kept, shifted below
        if action == "X":
            del ds[tag]
            continue
        if action == "K" or (top and action == "M" and t not in (_PATIENT_ID, _ACCESSION)):
            continue
        if action == "M" and t == _BIRTH_DATE:
            del ds[tag]  # a nested birth date has no sham counterpart
            continue
        elem = ds[tag]
        vr = elem.VR
        if action == "Z":
            elem.value = None if vr == "SQ" else ""
        elif action == "D" and vr == "SQ":
            del ds[tag]  # no dummy content sequence: removing it is the safe choice
        elif action == "D" and vr != "UI":
            elem.value = _dummy(vr)
        elif vr == "SQ":
            for item in elem.value:
                _walk(item, ctx, table)
        elif elem.value in (None, ""):
            continue
        elif t == _PATIENT_ID:
            old_pid, new_pid = ctx.patient_id
            elem.value = new_pid if str(elem.value) == old_pid else ctx.pz.accession(f"patient|{elem.value}")
        elif t == _ACCESSION:
            old_acc, new_acc = ctx.accession
            elem.value = new_acc if str(elem.value) == old_acc and new_acc else ctx.pz.accession(str(elem.value))
        elif vr == "UI":
            elem.value = _map_value(elem.value, ctx.uid)
        elif vr == "DA":
            elem.value = _map_value(elem.value, ctx.date)
        elif vr == "TM":
            elem.value = _map_value(elem.value, ctx.time)
        elif vr == "DT":
            elem.value = _map_value(elem.value, ctx.datetime)
        elif vr == "PN":
            del ds[tag]


def anonymize_dataset(ds: Any, pseudonymizer: Pseudonymizer | None = None, name: str = "<dataset>") -> Any:
    """Pseudonymize ``ds`` in place and return it; ``InvalidDicom``/``ValidationError`` name ``name`` only."""
    from pydicom import __version__ as pydicom_version
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

    pz = pseudonymizer or CachingPseudonymizer()
    tags = identifying_tags(ds)
    try:
        new = pz.replacement_map(tags, DicomLevel.INSTANCES)
        offset = pz.identity(tags).TimeOffset
    except ValidationError as exc:
        raise ValidationError(f"{name}: cannot pseudonymize ({exc})") from None
    ctx = _Context(pz, tags, new, offset)
    pairs = {k: (ds.get(k), ds.get(k[:-4] + "Time")) for k in ("SeriesDate", "AcquisitionDate", "ContentDate",
                                                               "InstanceCreationDate")}
    _walk(ds, ctx, annex_e.actions(), top=True)
    for date_kw, (da, tm) in pairs.items():  # shift pairs from the originals so the day rolls over correctly
        if da and tm and date_kw in ds and date_kw[:-4] + "Time" in ds:
            ds[date_kw].value, ds[date_kw[:-4] + "Time"].value = shift_datetime(str(da), str(tm), offset)
    for key, value in new.items():
        setattr(ds, key, value)
    ds.PatientIdentityRemoved = "YES"
    ds.LongitudinalTemporalInformationModified = "MODIFIED"
    ds.DeidentificationMethod = list(annex_e.METHOD)
    codes = []
    for value, meaning in annex_e.METHOD_CODES:
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
        codes.append(code)
    ds.DeidentificationMethodCodeSequence = Sequence(codes)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID  # we wrote this file, not the original software
        meta.ImplementationVersionName = f"PYDICOM {pydicom_version}"[:16]
    return ds
