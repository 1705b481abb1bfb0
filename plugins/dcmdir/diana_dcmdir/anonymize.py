"""The one de-identification engine: pseudonymize a pydicom dataset with a ``Pseudonymizer`` and its ``Profile``.

Every path goes through here (DcmDir, the local relay the Collector and routes use for Orthanc and ProxiedDicom,
``Orthanc.anonymize``), so output is element-for-element the same. Identifiers come from
``Pseudonymizer.replacement_map``; other non-standard UIDs go through ``remap_uid``; dates and times move by the
patient's TimeOffset (modified-dates option); sequences are walked; private, curve/overlay, unknown public
elements and file-meta AE titles are removed. Elements are decided from the raw element (numeric tag, VR) and
converted only when their value must change. The walk's context and value changes are ``deid_context``'s; the
elements set after the walk (identifiers, method and codes) are ``deid_elements``'s.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from diana_core.deid_profile import ALLOW_BURNED_IN, OPTIONS, Profile
from diana_core.dicom import DicomLevel
from diana_core.errors import ValidationError
from diana_core.pixels import CLEAN_PIXELS
from diana_core.pseudonym import Pseudonymizer
from diana_dcmdir import annex_e, deid_plan
from diana_dcmdir.burned_in import Quarantined, burned_in_reason, clean_pixels, hold_back
from diana_dcmdir.burned_in import header_text as _text
from diana_dcmdir.deid_context import DeidContext, dummy_value, raw_text, shift_pair
from diana_dcmdir.deid_elements import (
    DATE_TIME_PAIRS,
    ID_NUMBERS,
    MAP_TAGS,
    MAP_VRS,
    META_KEEP,
    code_item,
    codes_element,
    little_endian,
    set_text,
)
from diana_dcmdir.deid_plan import ACCESSION, DROP, KEEP, PATIENT_ID, PRIVATE, RAW, REPLACE, Plan

__all__ = ["Quarantined", "anonymize_dataset", "burned_in_reason", "identifying_tags", "raw_text"]

_PATIENT_ID, _ACCESSION = PATIENT_ID, ACCESSION
_PIXEL_DATA = 0x7FE00010
_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UT", "UC", "CS", "AE"})


def identifying_tags(ds: Any) -> dict[str, str]:
    """The top-level values the replacement map is computed from (as strings)."""
    out = {}
    for key, tag in ID_NUMBERS:
        value = _text(ds, tag)
        if value:
            out[key] = value
    return out


# kept for callers of the first wave: the identity cache now lives in Pseudonymizer itself
CachingPseudonymizer = Pseudonymizer


def _map_value(value: Any, fn: Any) -> Any:
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [fn(v) for v in value]
    return fn(value)


def _walk(ds: Any, ctx: DeidContext, plan: Plan, top: bool = False) -> None:
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
            elem.value = dummy_value(vr)
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


def _raw_element(raw: Any, vr: str, action: str | None, ctx: DeidContext) -> tuple[Any, str] | None:
    """Decide a plain-ASCII string element from its raw bytes (``deid_context.raw_text``) without making a pydicom
    DataElement: (new raw element, action counted), or None for the full path."""
    value = raw.value
    if not isinstance(value, bytes):
        return None
    done = raw_text(value, vr, action, ctx)
    if done is None:
        return None
    body, counted = done
    return (raw if body is None else raw._replace(length=len(body), value=body)), counted


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
    ctx = DeidContext(pz, tags, new, offset, profile, _scrubber(ds, profile))
    pairs = [(d, t, _text(ds, d), _text(ds, t)) for d, t in DATE_TIME_PAIRS] if ctx.shift else []
    _walk(ds, ctx, plan, top=True)
    for date_tag, time_tag, da, tm in pairs:  # shifted from the originals so the day rolls over correctly
        if da and tm and date_tag in ds._dict and time_tag in ds._dict:
            new_da, new_tm = shift_pair(da, tm, offset)
            set_text(ds, date_tag, "DA", new_da)
            set_text(ds, time_tag, "TM", new_tm)
    for key, value in new.items():
        if key in ("StudyDate", "StudyTime") and not ctx.shift:
            if ctx.full_dates:
                continue  # full dates: the original stays
            value = ""
        elif key == "PatientBirthDate" and not (ctx.shift or ctx.full_dates):
            value = ""
        set_text(ds, MAP_TAGS[key], MAP_VRS[key], value)
    set_text(ds, 0x00120062, "CS", "YES")  # PatientIdentityRemoved
    if ctx.shift or ctx.full_dates:  # LongitudinalTemporalInformationModified
        set_text(ds, 0x00280303, "CS", "MODIFIED" if ctx.shift else "UNMODIFIED")
    else:
        set_text(ds, 0x00280303, "CS", "REMOVED")
    cleaned = [OPTIONS[CLEAN_PIXELS]] if pixels_cleaned else []  # 113101 only where a cleaning pass ran
    set_text(ds, 0x00120063, "LO", profile.method + [m for _, m in cleaned])  # DeidentificationMethod
    codes = tuple(profile.method_codes) + tuple(cleaned)
    if little_endian(ds) is None:
        ds.DeidentificationMethodCodeSequence = Sequence([code_item(value, meaning) for value, meaning in codes])
    else:  # the same sequence for every instance of a job: encoded once
        element = codes_element(codes, bool(ds.original_encoding[0]))
        ds._dict[element.tag] = element
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        for tag in [t for t in meta._dict if int(t) not in META_KEEP]:
            del meta[tag]
            ctx.count("removed")
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID  # we wrote this file, not the original software
        meta.ImplementationVersionName = f"PYDICOM {pydicom_version}"[:16]
    ctx.counts["replaced"] = ctx.counts.get("replaced", 0) + len(new)
    pz.report.add(ctx.counts)
    return ds
