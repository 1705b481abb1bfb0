"""A whole file through the raw-bytes engine (``rawengine``): file meta, identifiers, the burned-in guard, the walk,
the values set afterwards (replacement map, method, codes), and the output as ``rawpath.Parsed.serialize`` writes it.

``anonymize`` mirrors ``anonymize.anonymize_dataset`` step by step on bytes; it raises ``Decline`` (before counting
anything) for what it does not model: the caller then takes the dataset path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from diana_core.deid_profile import ALLOW_BURNED_IN
from diana_core.dicom import DicomLevel
from diana_core.errors import ValidationError
from diana_core.pseudonym import Pseudonymizer
from diana_dcmdir import deid_context, deid_elements, deid_plan
from diana_dcmdir.burned_in import reason
from diana_dcmdir.rawengine import (
    _CHARSET,
    _EXPLICIT_LE,
    _IMPLICIT_LE,
    _LONG,
    _NOT_HERE,
    _PIXEL_DATA,
    _SHORT,
    _SOP_CLASS,
    _SOP_INSTANCE,
    _UNDEFINED,
    Decline,
    _explicit_head,
    _File,
    _padded,
    _u32,
    header,
)

_KEEPING = (0, 0, 0, b"")
_META_KEEP = frozenset({0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013})


def _meta(data: bytes) -> tuple[dict[int, tuple[str, bytes]], int]:
    """The file meta elements {tag: (VR, value)} and where the dataset starts."""
    meta: dict[int, tuple[str, bytes]] = {}
    pos, end, last = 132, len(data), -1
    while pos + 8 <= end:
        group, element, vr_bytes, length = _explicit_head(data, pos)
        if group != 2:
            break
        tag = group << 16 | element
        if tag <= last:
            raise Decline("meta out of order")
        last = tag
        vr = _SHORT.get(vr_bytes)
        start = pos + 8
        if vr is None:
            vr = _LONG.get(vr_bytes)
            if vr is None or pos + 12 > end:
                raise Decline("meta element not modelled")
            length, start = _u32(data, pos + 8)[0], pos + 12
        if length == _UNDEFINED or start + length > end:
            raise Decline("meta element cut short")
        meta[tag] = (vr, data[start:start + length])
        pos = start + length
    return meta, pos


def _ascii(value: bytes) -> str:
    if not value.isascii() or b"\x1b" in value:
        raise Decline("not plain ASCII")
    return value.decode("ascii")


@functools.cache
def _implementation() -> tuple[str, str]:
    from pydicom import __version__ as pydicom_version
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

    return str(PYDICOM_IMPLEMENTATION_UID), f"PYDICOM {pydicom_version}"[:16]


def _meta_bytes(meta: dict[int, tuple[str, bytes]], sop_class: str | None, sop_instance: str | None) -> bytes:
    """The meta group as ``rawpath._meta_bytes`` writes what the engine and ``dcmwrite`` leave of it."""
    values: dict[int, tuple[str, str]] = {}
    for tag in (0x00020002, 0x00020003, 0x00020010):
        if tag in meta:
            vr, value = meta[tag]
            if vr != "UI":
                raise Decline("a meta UID with another VR")
            values[tag] = ("UI", _ascii(value).rstrip(" \x00"))
    if sop_class and (0x00020002 not in values or sop_class != values[0x00020002][1]):
        values[0x00020002] = ("UI", sop_class)
    if sop_instance is not None:
        values[0x00020003] = ("UI", sop_instance)
    uid, version = _implementation()
    values[0x00020012], values[0x00020013] = ("UI", uid), ("SH", version)
    if any(not values.get(t, ("", ""))[1] for t in (0x00020002, 0x00020003, 0x00020010)):
        raise Decline("required file meta missing: pydicom refuses to write it")
    vr, version_bytes = meta.get(0x00020001, ("OB", b""))
    if vr != "OB":
        raise Decline("a meta version with another VR")
    version_bytes = version_bytes or b"\x00\x01"
    if len(version_bytes) & 1:
        version_bytes += b"\x00"
    body = [header(0x00020001, "OB", len(version_bytes), False) + version_bytes]
    for tag in sorted(values):
        vr, text = values[tag]
        value = _padded(text, vr)
        body.append(header(tag, vr, len(value), False) + value)
    content = b"".join(body)
    return header(0x00020000, "UL", 4, False) + len(content).to_bytes(4, "little") + content


def anonymize(data: bytes, pz: Pseudonymizer, name: str) -> tuple[bytes, RawResult]:
    """The pseudonymized file bytes and a view of its header; ``Decline`` when the file needs the dataset path."""
    pieces, final = anonymize_pieces(data, pz, name)
    view = memoryview(data)
    out = b"".join([view[p] if type(p) is slice else p for p in pieces])
    return out, RawResult(lambda: out, name, final)


def anonymize_pieces(data: Any, pz: Pseudonymizer, name: str) -> tuple[list[Any], Any]:
    """The output as a list of new bytes and slices of ``data`` (bytes, or a file's mmap: only the pages the
    engine reads are touched) to copy, and its value reader (``final``)."""
    profile = pz.profile
    plan = deid_plan.plan(profile)
    if plan.safe_private or plan.cleans or plan.replaces:
        raise Decline("a profile option not modelled")
    if len(data) < 144 or data[128:132] != b"DICM":
        raise Decline("no preamble")
    meta, pos = _meta(data)
    if 0x00020010 not in meta:
        raise Decline("no transfer syntax")
    syntax = meta[0x00020010][1].decode("ascii", "replace").strip("\x00 ")
    if syntax in _NOT_HERE or not syntax:
        raise Decline("big endian or deflated")
    implicit = syntax == _IMPLICIT_LE
    compressed = syntax not in (_EXPLICIT_LE, _IMPLICIT_LE)
    f = _File(data, implicit, plan, _WATCH, _INSERTS)
    edits, work, end, _ = f.scan(pos, len(data), in_item=False, top=True)
    if not f.elements:
        raise Decline("empty dataset")
    index = f.index
    pixels = index.get(_PIXEL_DATA)
    if pixels is not None and (data[pixels[3] - 4:pixels[3]] == b"\xff\xff\xff\xff") != compressed:
        raise Decline("pixel data length form does not match the transfer syntax")
    if pixels is None and 0x00280010 in index:
        raise Decline("image without pixel data")

    def text(tag: int) -> str | None:  # header_text: both ends stripped
        e = index.get(tag)
        return None if e is None else _ascii(data[e[3]:e[4]]).strip(" \x00")

    tags = {key: value for key, tag in deid_elements.ID_NUMBERS if (value := text(tag))}
    if not profile.has(ALLOW_BURNED_IN) and reason(index.__contains__, text) is not None:
        raise Decline("at risk of burned-in text: decided on the full dataset")
    if "SOPInstanceUID" not in tags:
        raise Decline("no SOP instance UID")
    try:
        new = _replacement_map(pz, tags)
        offset = pz.identity(tags).TimeOffset
    except ValidationError as exc:
        raise Decline("the dataset path names the error") from exc
    ctx = f.ctx = deid_context.DeidContext(pz, tags, new, offset, profile, None)
    pairs = [(d, t, text(d), text(t)) for d, t in deid_elements.DATE_TIME_PAIRS] if ctx.shift else []
    f.walk(work, edits, top=True)

    def present(tag: int) -> bool:  # after the walk
        return tag in index and edits.get(tag, _KEEPING)[3] is not None

    def set_text(tag: int, vr: str, value: str | list[str]) -> None:  # deid_elements.set_text
        element = f.text_element(tag, vr, value if isinstance(value, str) else "\\".join(value))
        put(tag, vr, element)

    def put(tag: int, vr: str, element: bytes) -> None:
        e = index.get(tag)
        if e is None:
            at = f.inserted_at[tag]
            edits[tag] = (at, at, tag, element)
            return
        if present(tag) and e[1] not in (vr, None):
            raise Decline("a value set over another VR")
        edits[tag] = (e[2], e[5], tag, element)

    for date_tag, time_tag, da, tm in pairs:
        if da and tm and present(date_tag) and present(time_tag):
            new_da, new_tm = deid_context.shift_pair(da, tm, offset)
            set_text(date_tag, "DA", new_da)
            set_text(time_tag, "TM", new_tm)
    for key, value in new.items():
        if key in ("StudyDate", "StudyTime") and not ctx.shift:
            if ctx.full_dates:
                continue
            value = ""
        elif key == "PatientBirthDate" and not (ctx.shift or ctx.full_dates):
            value = ""
        set_text(deid_elements.MAP_TAGS[key], deid_elements.MAP_VRS[key], value)
    set_text(0x00120062, "CS", "YES")
    set_text(0x00280303, "CS", ("MODIFIED" if ctx.shift else "UNMODIFIED") if ctx.shift or ctx.full_dates
             else "REMOVED")
    set_text(0x00120063, "LO", profile.method)
    codes = deid_elements.codes_element(tuple(profile.method_codes), implicit)
    put(0x00120064, "SQ", header(0x00120064, "SQ", len(codes.value), implicit) + codes.value)

    def final(tag: int) -> str | None:
        """The value written for a top-level string element (None when absent)."""
        edit = edits.get(tag)
        if edit is None:
            e = index.get(tag)
            return None if e is None else _ascii(data[e[3]:e[4]]).rstrip(" \x00")
        element = edit[3]
        if element is None:
            return None
        skip = 8 if implicit or element[4:6].decode("ascii", "replace") not in _LONG.values() else 12
        return _ascii(element[skip:]).rstrip(" \x00")

    if present(_SOP_CLASS) and _SOP_CLASS not in edits:  # read by the writer, so re-encoded
        put(_SOP_CLASS, "UI", f.text_element(_SOP_CLASS, "UI", final(_SOP_CLASS) or ""))
    removed = sum(1 for t in meta if t not in _META_KEEP)
    if removed:
        f.counts["removed"] = f.counts.get("removed", 0) + removed
    head = data[:128] + b"DICM" + _meta_bytes(meta, final(_SOP_CLASS), final(_SOP_INSTANCE))
    pieces = [head, *f.pieces(edits, pos, end)]
    f.counts["replaced"] = f.counts.get("replaced", 0) + len(new)
    pz.report.add(f.counts)
    return pieces, final


_STUDY_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientAge", "PatientSex", "StudyDate", "StudyTime",
               "AccessionNumber", "StudyInstanceUID")


def _replacement_map(pz: Pseudonymizer, tags: dict[str, str]) -> dict[str, str]:
    """``pz.replacement_map(tags, INSTANCES)``, its study part computed once per study (a date parse, HMACs), the
    series UID once per series."""
    studies = deid_context.caches(pz)["studies"]
    key = tuple(tags.get(k) for k in _STUDY_KEYS)
    base = studies.get(key)
    if base is None:
        if len(studies) >= 10_000:
            studies.clear()
        study = {k: v for k, v in tags.items() if k in _STUDY_KEYS}
        base = studies[key] = pz.replacement_map(study, DicomLevel.STUDIES)
    new = dict(base)
    series = tags.get("SeriesInstanceUID")
    if series:
        at = (key, series)
        uid = studies.get(at)
        if uid is None:
            uid = studies[at] = pz.uid(tags, DicomLevel.SERIES)
        new["SeriesInstanceUID"] = uid
    if tags.get("SOPInstanceUID"):
        new["SOPInstanceUID"] = pz.uid(tags, DicomLevel.INSTANCES)
    return new


# what the callers of anonymize_bytes read from the returned dataset (file naming, the study index)
_FAST_KEYS = {"PatientID": 0x00100020, "PatientName": 0x00100010, "PatientBirthDate": 0x00100030,
              "PatientSex": 0x00100040, "PatientAge": 0x00101010, "AccessionNumber": 0x00080050,
              "StudyInstanceUID": 0x0020000D, "StudyDate": 0x00080020, "StudyTime": 0x00080030,
              "StudyDescription": 0x00081030, "ReferringPhysicianName": 0x00080090, "Modality": 0x00080060,
              "SeriesInstanceUID": 0x0020000E, "SOPInstanceUID": 0x00080018, "SOPClassUID": _SOP_CLASS,
              "SpecificCharacterSet": _CHARSET}


def snapshot(final: Callable[[int], str | None]) -> Callable[[int], str | None]:
    """``final`` for the keys ``RawResult.get`` answers, read now (before the input's memory map is closed)."""
    values: dict[int, str | None] = {}
    for tag in _FAST_KEYS.values():
        try:
            values[tag] = final(tag)
        except Decline:
            pass  # not plain ASCII: RawResult parses the output

    def read(tag: int) -> str | None:
        if tag not in values:
            raise Decline("not read")
        return values[tag]

    return read


class RawResult:
    """The pseudonymized instance as its callers read it: ``get`` of the identifiers and index keys from the
    written values; anything else parses the output with pydicom (once)."""

    def __init__(self, load: Callable[[], bytes], name: str, final: Any) -> None:
        self._load, self._name, self._final = load, name, final

    def get(self, key: Any, default: Any = None) -> Any:
        tag = _FAST_KEYS.get(key) if isinstance(key, str) else None
        if tag is not None:
            try:
                value = self._final(tag)
            except Decline:
                return self.dataset.get(key, default)
            if value is None:
                return default
            if "\\" not in value:
                return value
        return self.dataset.get(key, default)

    @functools.cached_property
    def dataset(self) -> Any:
        from diana_dcmdir import reading

        return reading.read_bytes(self._load(), self._name)

    def __getattr__(self, name: str) -> Any:
        if name in ("_load", "_name", "_final", "dataset"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, key: Any) -> Any:
        return self.dataset[key]

    def __contains__(self, key: Any) -> bool:
        return key in self.dataset

    def __iter__(self) -> Any:
        return iter(self.dataset)

    def __len__(self) -> int:
        return len(self.dataset)


__all__ = ["Decline", "RawResult", "_PIXEL_DATA", "anonymize"]

# the top-level tags the steps after the walk read or set (their elements are kept by the scan), and the ones they
# may add
_INSERTS = tuple(sorted({*deid_elements.MAP_TAGS.values(), 0x00120062, 0x00120063, 0x00120064, 0x00280303}))
_WATCH = frozenset({*_INSERTS, *_FAST_KEYS.values(), *(t for _, t in deid_elements.ID_NUMBERS),
                    *(t for pair in deid_elements.DATE_TIME_PAIRS for t in pair), _PIXEL_DATA, 0x00280010,
                    0x00280301, 0x00080016, 0x00080064, 0x00080060, 0x00080008})  # Rows, the burned-in guard's
