"""What one dataset's de-identification walk needs and how its values change: ``DeidContext`` (the UID map, the
time offset, the cleaner, counts), the caches kept per pseudonymizer across a job's instances, and the new value
of a plain-ASCII string element decided from its bytes (``raw_text``) as the pydicom path would write it.
Both walks use them: ``anonymize`` on pydicom datasets and ``rawengine``/``rawfile`` on raw bytes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from diana_core.deid_profile import Profile
from diana_core.pseudonym import Pseudonymizer, shift_date, shift_datetime
from diana_dcmdir import annex_e

DICOM_ROOT = "1.2.840.10008."


class DeidContext:
    """What one dataset's walk needs: the uid map, the time offset, the cleaner, caches and counts."""

    def __init__(self, pz: Pseudonymizer, tags: Mapping[str, str], new: Mapping[str, str], offset: timedelta,
                 profile: Profile, scrub: re.Pattern[str] | None) -> None:
        self.pz = pz
        self.offset = offset
        self.uids = {tags[k]: new[k] for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
                     if k in tags and k in new}
        self.patient_id = (tags.get("PatientID"), new["PatientID"])
        self.accession = (tags.get("AccessionNumber"), new.get("AccessionNumber"))
        self.shift = profile.has("retain-modified-dates")
        self.full_dates = profile.has("retain-full-dates")
        self.safe_private = profile.has("retain-safe-private")
        self.replace = annex_e.replacements(profile) if profile.replace else {}
        self.scrub = scrub
        self.remapped = caches(pz)["uids"]
        self.counts: dict[str, int] = {}

    def count(self, action: str) -> None:
        self.counts[action] = self.counts.get(action, 0) + 1

    def uid(self, value: str) -> str:
        value = str(value).strip("\x00 ")
        if not value or value.startswith(DICOM_ROOT):
            return value
        new = self.uids.get(value)
        if new is None:
            new = self.remapped.get(value)
            if new is None:
                if len(self.remapped) >= 100_000:
                    self.remapped.clear()
                new = self.remapped[value] = self.pz.remap_uid(value)
        return new

    def date(self, value: str) -> str:
        text = str(value)
        if not text:
            return text
        return shift_date_memo(text, self.offset)

    def time(self, value: str) -> str:
        text = str(value)
        if not text:
            return text
        return shift_pair("19700102", text, self.offset)[1]

    def datetime(self, value: str) -> str:
        text = str(value)
        if len(text) < 8:
            return ""
        digits = re.match(r"\d*", text).group(0)  # type: ignore[union-attr]
        da, tm = shift_datetime(digits[:8], digits[8:14] or None, self.offset)
        return da + tm[: max(len(digits) - 8, 0)] if da else ""

    def clean(self, value: Any) -> Any:
        if self.scrub is None or not isinstance(value, str):
            return value
        return self.scrub.sub("", value)


_CACHES: dict[int, tuple[Pseudonymizer, dict[str, dict[Any, Any]]]] = {}


def caches(pz: Pseudonymizer) -> dict[str, dict[Any, Any]]:
    """Results that only depend on the pseudonymizer (keyed UID remaps, a study's replacement map), kept across the
    instances of a job: a series repeats its frame of reference, study and references in every file."""
    entry = _CACHES.get(id(pz))
    if entry is None or entry[0] is not pz:
        if len(_CACHES) >= 16:
            _CACHES.clear()
        entry = _CACHES[id(pz)] = (pz, {"uids": {}, "studies": {}})
    return entry[1]


@functools.lru_cache(maxsize=4096)
def shift_date_memo(text: str, offset: timedelta) -> str:
    return shift_date(text, offset)


@functools.lru_cache(maxsize=4096)
def shift_pair(da: str, tm: str, offset: timedelta) -> tuple[str, str]:
    """shift_datetime, remembered: a series repeats the same few dates and times in every file."""
    return shift_datetime(da, tm, offset)


def dummy_value(vr: str) -> Any:
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


RAW_SHIFTS = {"DA": "date", "TM": "time", "DT": "datetime"}


def raw_text(value: bytes, vr: str, action: str | None, ctx: DeidContext) -> tuple[bytes | None, str] | None:
    """What the conversion path of ``anonymize._walk`` does to a plain-ASCII string value (same value, same count), from its
    bytes: (new value bytes, or None when unchanged; action counted), or None when pydicom must convert it.

    pydicom reads such a value as ``text.rstrip(" \\x00").split("\\\\")`` and writes it joined by backslashes,
    padded to even length with NUL (UI) or space; those are the bytes returned."""
    if not value.isascii() or b"\x1b" in value:
        return None  # another character set: pydicom decodes it
    if action == "Z":
        return b"", "emptied"
    if action == "D":
        if vr == "UI":
            return None
        return padded(dummy_value(vr), vr), "dummy"
    text = value.decode("ascii").rstrip(" \x00")
    if text == "" or (vr != "UI" and vr not in RAW_SHIFTS):
        return None, "kept"
    items = text.split("\\")
    if vr == "UI":
        return padded("\\".join(ctx.uid(v) for v in items), vr), "remapped"
    shift = getattr(ctx, RAW_SHIFTS[vr])
    return padded("\\".join(shift(v) for v in items), vr), "shifted"


def padded(text: str, vr: str) -> bytes:
    body = text.encode("ascii")
    if len(body) & 1:
        body += b"\x00" if vr == "UI" else b" "
    return body
