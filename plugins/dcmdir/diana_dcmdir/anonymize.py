"""The one de-identification engine: pseudonymize a pydicom dataset with a ``Pseudonymizer`` and its ``Profile``.

Every path goes through here (DcmDir, the local relay the Collector and routes use for Orthanc and ProxiedDicom,
``Orthanc.anonymize``), so output is element-for-element the same. Identifiers come from
``Pseudonymizer.replacement_map``; other non-standard UIDs go through ``remap_uid``; dates and times move by the
patient's TimeOffset (modified-dates option); sequences are walked; private, curve/overlay, unknown public
elements and file-meta AE titles are removed. Elements are decided from the raw element (numeric tag, VR) and
converted only when their value must change.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from diana_core.deid_profile import ALLOW_BURNED_IN, OPTIONS, Profile
from diana_core.dicom import DicomLevel
from diana_core.errors import ValidationError
from diana_core.pixels import CLEAN_PIXELS
from diana_core.pseudonym import Pseudonymizer, shift_date, shift_datetime
from diana_dcmdir import annex_e, deid_plan
from diana_dcmdir.burned_in import Quarantined, burned_in_reason, clean_pixels, hold_back
from diana_dcmdir.burned_in import header_text as _text
from diana_dcmdir.deid_plan import ACCESSION, DROP, KEEP, PATIENT_ID, PRIVATE, RAW, REPLACE, Plan

__all__ = ["Quarantined", "anonymize_dataset", "burned_in_reason", "identifying_tags"]

_DICOM_ROOT = "1.2.840.10008."
_PATIENT_ID, _ACCESSION = PATIENT_ID, ACCESSION
_PIXEL_DATA = 0x7FE00010
_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UT", "UC", "CS", "AE"})
# file meta kept (the rest, e.g. Source/Sending/Receiving AE titles and private information, is removed)
_META_KEEP = frozenset({0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013})
# (date, time) pairs shifted together so the day rolls over: Series, Acquisition, Content, InstanceCreation
_PAIRS = ((0x00080021, 0x00080031), (0x00080022, 0x00080032), (0x00080023, 0x00080033), (0x00080012, 0x00080013))


# the identifiers (keyword, tag) the replacement map is computed from and sets
_ID_NUMBERS = (
    ("PatientName", 0x00100010), ("PatientID", 0x00100020), ("PatientBirthDate", 0x00100030),
    ("PatientAge", 0x00101010), ("PatientSex", 0x00100040), ("StudyDate", 0x00080020), ("StudyTime", 0x00080030),
    ("AccessionNumber", 0x00080050), ("StudyInstanceUID", 0x0020000D), ("SeriesInstanceUID", 0x0020000E),
    ("SOPInstanceUID", 0x00080018))
_MAP_TAGS = dict(_ID_NUMBERS)
_MAP_VRS = {"PatientName": "PN", "PatientID": "LO", "PatientBirthDate": "DA", "PatientAge": "AS", "PatientSex": "CS",
            "StudyDate": "DA", "StudyTime": "TM", "AccessionNumber": "SH", "StudyInstanceUID": "UI",
            "SeriesInstanceUID": "UI", "SOPInstanceUID": "UI"}


def identifying_tags(ds: Any) -> dict[str, str]:
    """The top-level values the replacement map is computed from (as strings)."""
    out = {}
    for key, tag in _ID_NUMBERS:
        value = _text(ds, tag)
        if value:
            out[key] = value
    return out


# kept for callers of the first wave: the identity cache now lives in Pseudonymizer itself
CachingPseudonymizer = Pseudonymizer


class _Context:
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
        if not value or value.startswith(_DICOM_ROOT):
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
        return _shift_date(text, self.offset)

    def time(self, value: str) -> str:
        text = str(value)
        if not text:
            return text
        return _shift_pair("19700102", text, self.offset)[1]

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
def _shift_date(text: str, offset: timedelta) -> str:
    return shift_date(text, offset)


@functools.lru_cache(maxsize=4096)
def _shift_pair(da: str, tm: str, offset: timedelta) -> tuple[str, str]:
    """shift_datetime, remembered: a series repeats the same few dates and times in every file."""
    return shift_datetime(da, tm, offset)


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


def _walk(ds: Any, ctx: _Context, plan: Plan, top: bool = False) -> None:
    """Apply the profile to one (nested) dataset in place; map values are set on the top level afterwards."""
    elems = ds._dict
    count = ctx.count
    verdict = plan.verdict
    creators: set[int] = set()
    for tag in list(elems):
        t = int(tag)
        raw = elems[tag]
        kind, vr, action = verdict(t, raw.VR, top)
        if kind == KEEP:
            count("kept")
            continue
        if kind == DROP:
            del elems[tag]
            count("removed")
            continue
        if kind == PRIVATE:
            if (t & 0xFFFF) >= 0x100:
                creators.add(((t >> 16) << 16) | ((t >> 8) & 0xFF))
            count("kept")
            continue
        if kind == REPLACE:
            ds[tag].value = ctx.replace[t]
            count("replaced")
            continue
        if kind == RAW and type(raw).__name__ == "RawDataElement" and raw.VR in (vr, None):
            done = _raw_element(raw, vr, action, ctx)
            if done is not None:
                if done[0] is not raw:
                    elems[tag] = done[0]
                count(done[1])
                continue
        elem = ds[tag]
        vr = elem.VR if elem.VR != "UN" else vr
        if action == "Z":
            elem.value = None if vr == "SQ" else ""
            count("emptied")
        elif action == "D" and vr == "SQ":
            del elems[tag]  # no dummy content sequence: removing it is the safe choice
            count("removed")
        elif action == "D" and vr != "UI":
            elem.value = _dummy(vr)
            count("dummy")
        elif vr == "SQ":
            for item in elem.value:
                _walk(item, ctx, plan)
            count("cleaned" if action == "C" else "kept")
        elif elem.value in (None, ""):
            count("kept")
        elif vr == "PN":
            del elems[tag]
            count("removed")
        elif action == "C":
            elem.value = _map_value(elem.value, ctx.clean) if vr in _TEXT_VRS else elem.value
            count("cleaned")
        elif t == _PATIENT_ID:
            old_pid, new_pid = ctx.patient_id
            elem.value = new_pid if str(elem.value) == old_pid else ctx.pz.accession(f"patient|{elem.value}")
            count("replaced")
        elif t == _ACCESSION:
            old_acc, new_acc = ctx.accession
            elem.value = new_acc if str(elem.value) == old_acc and new_acc else ctx.pz.accession(str(elem.value))
            count("replaced")
        elif vr == "UI":
            elem.value = _map_value(elem.value, ctx.uid)
            count("remapped")
        elif vr == "DA":
            elem.value = _map_value(elem.value, ctx.date)
            count("shifted")
        elif vr == "TM":
            elem.value = _map_value(elem.value, ctx.time)
            count("shifted")
        elif vr == "DT":
            elem.value = _map_value(elem.value, ctx.datetime)
            count("shifted")
        else:
            count("kept")
    if ctx.safe_private:  # a kept private element keeps its creator; creators left alone go
        for tag in [t for t in elems if int(t) >> 16 & 1 and int(t) & 0xFFFF < 0x100 and int(t) not in creators]:
            del elems[tag]


_RAW_SHIFTS = {"DA": "date", "TM": "time", "DT": "datetime"}


def _raw_element(raw: Any, vr: str, action: str | None, ctx: _Context) -> tuple[Any, str] | None:
    """Decide a plain-ASCII string element from its raw bytes (``_raw_text``) without making a pydicom DataElement:
    (new raw element, action counted), or None for the full path."""
    value = raw.value
    if not isinstance(value, bytes):
        return None
    done = raw_text(value, vr, action, ctx)
    if done is None:
        return None
    body, counted = done
    return (raw if body is None else raw._replace(length=len(body), value=body)), counted


def raw_text(value: bytes, vr: str, action: str | None, ctx: _Context) -> tuple[bytes | None, str] | None:
    """What the conversion path of ``_walk`` does to a plain-ASCII string value (same value, same count), from its
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
        return _padded(_dummy(vr), vr), "dummy"
    text = value.decode("ascii").rstrip(" \x00")
    if text == "" or (vr != "UI" and vr not in _RAW_SHIFTS):
        return None, "kept"
    items = text.split("\\")
    if vr == "UI":
        return _padded("\\".join(ctx.uid(v) for v in items), vr), "remapped"
    shift = getattr(ctx, _RAW_SHIFTS[vr])
    return _padded("\\".join(shift(v) for v in items), vr), "shifted"


def _padded(text: str, vr: str) -> bytes:
    body = text.encode("ascii")
    if len(body) & 1:
        body += b"\x00" if vr == "UI" else b" "
    return body


@functools.cache
def _cleans(profile: Profile) -> bool:
    return "C" in annex_e.actions(profile).values()


def _scrubber(ds: Any, profile: Profile) -> re.Pattern[str] | None:
    """A pattern matching the patient's identifying values, when the profile cleans ("C") any element."""
    if not _cleans(profile):
        return None
    words: set[str] = set()
    for key in ("PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName"):
        for value in _as_list(ds.get(key)):
            words.update(w for w in re.split(r"[\^=\s,]+", str(value)) if len(w) >= 2)
    for elem in ds:  # every person named at the top level (physicians, operators...)
        if elem.VR == "PN":
            for value in _as_list(elem.value):
                words.update(w for w in re.split(r"[\^=\s,]+", str(value)) if len(w) >= 2)
    for key in ("PatientID", "AccessionNumber", "OtherPatientIDs", "PatientBirthDate", "StudyID"):
        words.update(str(v) for v in _as_list(ds.get(key)) if len(str(v)) >= 2)
    if not words:
        return None
    return re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.IGNORECASE)


def _as_list(value: Any) -> list[Any]:
    if value in (None, ""):
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return list(value)
    return [value]


_CODES_TAG = 0x00120064  # DeidentificationMethodCodeSequence


def _little_endian(ds: Any) -> bool | None:
    """True when ``ds`` was read from little-endian bytes (its new values may then be raw elements), else None."""
    implicit, little = getattr(ds, "original_encoding", (None, None))
    return True if little is True and implicit is not None else None


def _set_text(ds: Any, tag: int, vr: str, value: str | list[str]) -> None:
    """Set a top-level string value. For a dataset read from little-endian bytes and plain ASCII text, as a raw
    element holding the bytes pydicom would write (joined by backslashes, padded with NUL for UI, else a space):
    the same file, without a DataElement made, validated and encoded for each of them."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import BaseTag

    old = ds._dict.get(tag)
    text = value if isinstance(value, str) else "\\".join(value)
    if _little_endian(ds) and text.isascii() and (old is None or old.VR in (vr, None)):
        body = text.encode("ascii")
        if len(body) & 1:
            body += b"\x00" if vr == "UI" else b" "
        key = BaseTag(tag)
        ds._dict[key] = RawDataElement(key, vr, len(body), body, 0, bool(ds.original_encoding[0]), True)
    elif old is not None:
        ds[tag].value = value
    else:
        ds.add_new(tag, vr, value)


def _code_item(value: str, meaning: str) -> Any:
    from pydicom.dataset import Dataset

    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = value, "DCM", meaning
    return code


@functools.lru_cache(maxsize=64)
def _codes_element(codes: tuple[tuple[str, str], ...], implicit: bool) -> Any:
    """DeidentificationMethodCodeSequence as a raw element: the bytes pydicom writes for the new sequence."""
    from pydicom.dataelem import DataElement, RawDataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element
    from pydicom.sequence import Sequence
    from pydicom.tag import BaseTag

    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, implicit
    write_data_element(fp, DataElement(_CODES_TAG, "SQ", Sequence([_code_item(v, m) for v, m in codes])))
    body = fp.getvalue()[8 if implicit else 12:]
    return RawDataElement(BaseTag(_CODES_TAG), "SQ", len(body), body, 0, implicit, True)


def anonymize_dataset(ds: Any, pseudonymizer: Pseudonymizer | None = None, name: str = "<dataset>") -> Any:
    """Pseudonymize ``ds`` in place and return it; ``Quarantined``/``InvalidDicom``/``ValidationError`` name
    ``name`` only. The pseudonymizer's profile says what is kept; its report counts what was done."""
    from pydicom import __version__ as pydicom_version
    from pydicom.sequence import Sequence
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

    pz = pseudonymizer or Pseudonymizer()
    profile = pz.profile
    tags = identifying_tags(ds)
    pixels_cleaned = False
    if not profile.has(ALLOW_BURNED_IN):
        reason = burned_in_reason(ds)
        if reason and profile.has(CLEAN_PIXELS):
            clean_pixels(ds, pz, name, tags, reason)  # before the header changes: its values are what OCR looks for
            pixels_cleaned = True
        elif reason:
            raise hold_back(ds, pz, name, tags, reason)
    try:
        new = pz.replacement_map(tags, DicomLevel.INSTANCES)
        offset = pz.identity(tags).TimeOffset
    except ValidationError as exc:
        raise ValidationError(f"{name}: cannot pseudonymize ({exc})") from None
    plan = deid_plan.plan(profile)
    ctx = _Context(pz, tags, new, offset, profile, _scrubber(ds, profile))
    pairs = [(d, t, _text(ds, d), _text(ds, t)) for d, t in _PAIRS] if ctx.shift else []
    _walk(ds, ctx, plan, top=True)
    for date_tag, time_tag, da, tm in pairs:  # shifted from the originals so the day rolls over correctly
        if da and tm and date_tag in ds._dict and time_tag in ds._dict:
            new_da, new_tm = _shift_pair(da, tm, offset)
            _set_text(ds, date_tag, "DA", new_da)
            _set_text(ds, time_tag, "TM", new_tm)
    for key, value in new.items():
        if key in ("StudyDate", "StudyTime") and not ctx.shift:
            if ctx.full_dates:
                continue  # full dates: the original stays
            value = ""
        elif key == "PatientBirthDate" and not (ctx.shift or ctx.full_dates):
            value = ""
        _set_text(ds, _MAP_TAGS[key], _MAP_VRS[key], value)
    _set_text(ds, 0x00120062, "CS", "YES")  # PatientIdentityRemoved
    if ctx.shift or ctx.full_dates:  # LongitudinalTemporalInformationModified
        _set_text(ds, 0x00280303, "CS", "MODIFIED" if ctx.shift else "UNMODIFIED")
    else:
        _set_text(ds, 0x00280303, "CS", "REMOVED")
    cleaned = [OPTIONS[CLEAN_PIXELS]] if pixels_cleaned else []  # 113101 only where a cleaning pass ran
    _set_text(ds, 0x00120063, "LO", profile.method + [m for _, m in cleaned])  # DeidentificationMethod
    codes = tuple(profile.method_codes) + tuple(cleaned)
    if _little_endian(ds) is None:
        ds.DeidentificationMethodCodeSequence = Sequence([_code_item(value, meaning) for value, meaning in codes])
    else:  # the same sequence for every instance of a job: encoded once
        element = _codes_element(codes, bool(ds.original_encoding[0]))
        ds._dict[element.tag] = element
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        for tag in [t for t in meta._dict if int(t) not in _META_KEEP]:
            del meta[tag]
            ctx.count("removed")
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID  # we wrote this file, not the original software
        meta.ImplementationVersionName = f"PYDICOM {pydicom_version}"[:16]
    ctx.counts["replaced"] = ctx.counts.get("replaced", 0) + len(new)
    pz.report.add(ctx.counts)
    return ds
