"""Pseudonymization plan shared by every backend: what each identifier becomes, reproducibly.

``Pseudonymizer.replacement_map(tags)`` gives the new PatientID/Name/BirthDate (GUIDMint), AccessionNumber
(keyed hash), UIDs (KeyedUIDMint by default, DIANA's DicomUIDMint when ``uid_scheme="diana"``) and shifted dates.
Orthanc applies the map server-side; DcmDir applies it locally with pydicom. Because the map is a pure function of
the original tags (and the optional secret key), the pseudonymized Orthanc id is known before anything is sent.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from attrs import define, field

from diana_core.dicom import DicomLevel, DicomUIDMint, KeyedUIDMint, orthanc_id
from diana_core.errors import ValidationError
from diana_core.guid import GUIDMint, ShamIdentity, as_date

KEY_ENV = "DIANA_PSEUDONYM_KEY"
_UID_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def _key_from_env() -> str | None:
    return os.environ.get(KEY_ENV) or None


def _parse_age(age: Any) -> float | None:
    """DICOM AS ("045Y", "006M", "010W", "003D") or a number -> years."""
    if age in (None, ""):
        return None
    if isinstance(age, (int, float)):
        return float(age)
    m = re.fullmatch(r"\s*(\d+)\s*([DWMY]?)\s*", str(age).upper())
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2) or "Y"
    return n / {"D": 365.25, "W": 52.18, "M": 12, "Y": 1}[unit]


def _as_date(value: Any) -> date | None:
    return as_date(value, strict=False)


def shift_date(value: str, offset: timedelta) -> str:
    """Shift a DICOM DA (YYYYMMDD) by whole days of ``offset``; unparseable values become ""."""
    parsed = _as_date(value)
    return (parsed + timedelta(days=offset.days)).strftime("%Y%m%d") if parsed else ""


def shift_datetime(da: str, tm: str | None, offset: timedelta) -> tuple[str, str]:
    """Shift a DA + TM pair by the full offset (days and seconds); returns (DA, TM)."""
    parsed = _as_date(da)
    if parsed is None:
        return "", ""
    clock = re.sub(r"[^0-9]", "", (tm or "").split(".")[0]).ljust(6, "0")[:6]
    try:
        start = datetime.combine(parsed, datetime.strptime(clock, "%H%M%S").time())
    except ValueError:
        start = datetime.combine(parsed, datetime.min.time())
    moved = start + offset
    return moved.strftime("%Y%m%d"), moved.strftime("%H%M%S")


@define
class Pseudonymizer:
    """Reproducible pseudonyms for one project. ``key`` (or $DIANA_PSEUDONYM_KEY) makes them secret."""

    key: str | bytes | None = field(factory=_key_from_env, repr=False)
    uid_scheme: str = "keyed"  # "keyed" (collision-free) | "diana" (original hierarchical scheme)
    uid_root: str = "2.25"
    app_id: str = "dicom"

    def __attrs_post_init__(self) -> None:
        if self.uid_scheme not in {"keyed", "diana"}:
            raise ValidationError(f"uid_scheme must be 'keyed' or 'diana', not {self.uid_scheme!r}")

    @property
    def _key_bytes(self) -> bytes:
        if self.key is None:
            return b""
        return self.key.encode() if isinstance(self.key, str) else self.key

    def identity(self, tags: Mapping[str, Any]) -> ShamIdentity:
        """The sham patient: name/sex/birth date (or age at the study date) of the original patient."""
        name = str(tags.get("PatientName") or tags.get("PatientID") or "")
        if not name:
            raise ValidationError("cannot pseudonymize an item with neither PatientName nor PatientID")
        dob = _as_date(tags.get("PatientBirthDate"))
        age = _parse_age(tags.get("PatientAge"))
        ref = _as_date(tags.get("StudyDate"))
        if dob is None and (age is None or ref is None):
            # no birth date and no usable age: key the pseudonym on the patient id with a fixed epoch date
            name = f"{name}|{tags.get('PatientID', '')}"
            dob = date(1900, 1, 1)
        return GUIDMint(self.key).get_sham_id(name, dob=dob, age=age, reference_date=ref, gender=tags.get("PatientSex"))

    def uid(self, tags: Mapping[str, Any], level: DicomLevel) -> str:
        """The new UID of the item at ``level`` (STUDIES, SERIES or INSTANCES)."""
        keys = _UID_KEYS[: int(level) - 1]
        values = [tags.get(k) for k in keys]
        if not keys or any(v in (None, "") for v in values):
            raise ValidationError(f"cannot mint a {level} UID: missing {', '.join(keys) or 'level'}")
        if self.uid_scheme == "diana":
            return DicomUIDMint(self.app_id).uid(str(tags.get("PatientID", "")), *values)
        return KeyedUIDMint(self._key_bytes, self.uid_root).remap(str(values[-1]))

    def remap_uid(self, uid: str) -> str:
        """Keyed remap of any UID (frame of reference, referenced SOPs): same input -> same output."""
        return KeyedUIDMint(self._key_bytes, self.uid_root).remap(str(uid))

    def accession(self, accession: str) -> str:
        """16 upper-case hex characters of a keyed SHA-256 of the accession number (fits VR SH)."""
        return hmac.new(self._key_bytes, str(accession).encode(), hashlib.sha256).hexdigest()[:16].upper()

    def replacement_map(self, tags: Mapping[str, Any], level: DicomLevel | str = DicomLevel.STUDIES) -> dict[str, str]:
        """DICOM keyword -> new value for the identifiers of an item at ``level`` (and above)."""
        lvl = DicomLevel.from_label(level)
        sham = self.identity(tags)
        birth = sham.BirthDate
        if birth == _as_date(tags.get("PatientBirthDate")):
            # GUIDMint keeps the real date 1 time in 181 (shift 0); never let a real birth date through
            birth = birth + timedelta(days=91)
        out = {
            "PatientID": sham.ID,
            "PatientName": sham.dicom_name,
            "PatientBirthDate": birth.strftime("%Y%m%d"),
        }
        if tags.get("AccessionNumber"):
            out["AccessionNumber"] = self.accession(str(tags["AccessionNumber"]))
        for lv in (DicomLevel.STUDIES, DicomLevel.SERIES, DicomLevel.INSTANCES):
            if lv <= lvl and tags.get(_UID_KEYS[int(lv) - 2]):
                out[_UID_KEYS[int(lv) - 2]] = self.uid(tags, lv)
        if tags.get("StudyDate"):
            out["StudyDate"], new_time = shift_datetime(str(tags["StudyDate"]), tags.get("StudyTime"), sham.TimeOffset)
            if tags.get("StudyTime"):
                out["StudyTime"] = new_time
        return out

    def predicted_oid(self, tags: Mapping[str, Any], level: DicomLevel | str = DicomLevel.STUDIES) -> str:
        """Orthanc id the pseudonymized item will have (study level and above are exact on any backend)."""
        lvl = DicomLevel.from_label(level)
        new = self.replacement_map(tags, lvl)
        ids = [new["PatientID"]] + [new[k] for k in _UID_KEYS[: int(lvl) - 1]]
        return orthanc_id(*ids)
