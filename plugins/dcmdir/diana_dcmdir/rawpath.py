"""De-identification at I/O speed: the one engine applied to a dataset parsed from raw bytes, written back by copying
the bytes of every element the engine left alone (pixel data included) and encoding only what it changed.

``anonymize_bytes`` is what every file-to-file path calls. It parses the file meta and the top-level elements of an
explicit or implicit VR little-endian file itself (a few microseconds per element: pydicom's reader costs ~15), builds
the same pydicom ``Dataset`` of raw elements that ``dcmread`` builds, runs ``anonymize_dataset`` on it unchanged, and
serializes as ``dcmwrite(enforce_file_format=True)`` would: preamble, ``write_file_meta_info``, then each element in
tag order, an untouched one as its original bytes (what pydicom writes for a raw element in the same encoding), a
changed one through pydicom's ``write_data_element``. Anything it does not handle (big endian, deflated, no preamble,
an undefined length it cannot delimit, a cut file, an instance at risk of burned-in text) goes the pydicom way; the
report counts both (``fast``/``fallback``). The differential test holds the output element-equal to the pydicom path.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any

from diana_core.pseudonym import Pseudonymizer

_LONG_VRS = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"})
_VRS = frozenset({b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN", b"SH",
                  b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"}) | _LONG_VRS
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_IMPLICIT_LE = "1.2.840.10008.1.2"
_NOT_FAST = frozenset({"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"})  # deflated, big endian
_ITEM, _ITEM_END, _SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_UNDEFINED = 0xFFFFFFFF
_PIXEL_DATA = 0x7FE00010
_unpack_tag = struct.Struct("<HH").unpack_from
_unpack_u32 = struct.Struct("<I").unpack_from
_unpack_u16 = struct.Struct("<H").unpack_from
_unpack_explicit = struct.Struct("<HH2sH").unpack_from  # group, element, VR, 16-bit length
_unpack_implicit = struct.Struct("<HHI").unpack_from  # group, element, 32-bit length
_VR_NAMES = {vr: vr.decode("ascii") for vr in _VRS}
# which fast path took the instances of this process ("raw": no Dataset at all; "dataset": raw elements in a
# pydicom Dataset); for benchmarks and tests, not a report
STAGES: dict[str, int] = {}


class _NotFast(Exception):
    """The file needs the pydicom path (the reason is for debugging, never shown to users)."""


def _tag(buf: bytes, pos: int) -> int:
    group, element = _unpack_tag(buf, pos)
    return int(group) << 16 | int(element)


def _skip_sequence(buf: bytes, pos: int, end: int) -> int:
    """Position of the sequence delimiter item of an undefined-length sequence (or encapsulated pixel data) whose
    items start at ``pos``; items of undefined length are walked element by element (explicit VR)."""
    while pos + 8 <= end:
        tag, length = _tag(buf, pos), _unpack_u32(buf, pos + 4)[0]
        if tag == _SEQ_END:
            return pos
        if tag != _ITEM:
            raise _NotFast("not an item inside a sequence")
        if length == _UNDEFINED:
            pos = _skip_item(buf, pos + 8, end)
        else:
            pos += 8 + length
    raise _NotFast("sequence not delimited")


def _skip_item(buf: bytes, pos: int, end: int) -> int:
    """Position after the item delimiter of an undefined-length item whose elements start at ``pos``."""
    while pos + 8 <= end:
        tag = _tag(buf, pos)
        if tag == _ITEM_END:
            return pos + 8
        vr = buf[pos + 4:pos + 6]
        if vr in _LONG_VRS:
            length, start = _unpack_u32(buf, pos + 8)[0], pos + 12
        elif vr in _VRS:
            length, start = _unpack_u16(buf, pos + 6)[0], pos + 8
        else:
            raise _NotFast("unknown VR in an item")
        if length == _UNDEFINED:
            if vr != b"SQ":
                raise _NotFast("undefined length inside an item")
            pos = _skip_sequence(buf, start, end) + 8
        else:
            pos = start + length
    raise _NotFast("item not delimited")


def parse_elements(buf: bytes, pos: int, end: int, implicit: bool, stop_group: int | None = None) -> tuple[
        dict[int, Any], dict[int, tuple[int, int]], int]:
    """Top-level raw elements from ``pos`` (until ``end``, or the first element outside group ``stop_group``):
    {tag: RawDataElement}, {tag: (first byte, byte after)} and where parsing stopped. ``_NotFast`` on anything odd.
    The loop is the fast path's hottest: one struct unpack per element header, no calls it can avoid."""
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import BaseTag

    elements: dict[int, Any] = {}
    spans: dict[int, tuple[int, int]] = {}
    last = -1
    explicit_head, implicit_head = _unpack_explicit, _unpack_implicit
    u32, long_vrs, vrs, new_raw = _unpack_u32, _LONG_VRS, _VRS, RawDataElement.__new__
    vr_names = _VR_NAMES
    while pos < end:
        if pos + 8 > end:
            raise _NotFast("element header cut short")
        if implicit:
            group, element, length = implicit_head(buf, pos)
            vr_bytes = b""
        else:
            group, element, vr_bytes, length = explicit_head(buf, pos)
        tag = group << 16 | element
        if stop_group is not None and group != stop_group:
            break
        if tag <= last or group == 0xFFFE:
            raise _NotFast("elements out of order or a stray delimiter")
        last = tag
        if implicit:
            vr, start = None, pos + 8
        elif vr_bytes in long_vrs:
            if pos + 12 > end:
                raise _NotFast("element header cut short")
            length, start, vr = u32(buf, pos + 8)[0], pos + 12, vr_names[vr_bytes]
        elif vr_bytes in vrs:
            start, vr = pos + 8, vr_names[vr_bytes]
        else:
            raise _NotFast("unknown VR")
        if length == _UNDEFINED:
            if implicit or not (vr == "SQ" or (tag == _PIXEL_DATA and vr in ("OB", "OW"))):
                raise _NotFast("undefined length the fast path does not delimit")
            value_end = _skip_sequence(buf, start, end)
            stop = value_end + 8
        else:
            value_end = stop = start + length
        if stop > end:
            raise _NotFast("value cut short")
        key = BaseTag(tag)
        elements[key] = new_raw(RawDataElement, key, vr, length, buf[start:value_end], start, implicit, True, False)
        spans[tag] = (pos, stop)
        pos = stop
    return elements, spans, pos


class Parsed:
    """A file parsed for the fast path: the dataset the engine works on and where each raw element's bytes lie."""

    def __init__(self, data: bytes, name: str) -> None:
        from pydicom.charset import convert_encodings, default_encoding
        from pydicom.dataelem import convert_raw_data_element
        from pydicom.dataset import Dataset, FileDataset, FileMetaDataset

        if len(data) < 144 or data[128:132] != b"DICM":
            raise _NotFast("no preamble")
        meta, _, pos = parse_elements(data, 132, len(data), implicit=False, stop_group=0x0002)
        if 0x00020010 not in meta:
            raise _NotFast("no transfer syntax")
        syntax = bytes(meta[0x00020010].value).decode("ascii", "replace").strip("\x00 ")
        if syntax in _NOT_FAST:
            raise _NotFast("big endian or deflated")
        self.implicit = syntax == _IMPLICIT_LE
        compressed = syntax not in (_EXPLICIT_LE, _IMPLICIT_LE)
        self.data = data
        self.raw, self.spans, _ = parse_elements(data, pos, len(data), implicit=self.implicit)
        if not self.raw:
            raise _NotFast("empty dataset")
        pixels = self.raw.get(_PIXEL_DATA)
        if pixels is not None and (pixels.length == _UNDEFINED) != compressed:
            raise _NotFast("pixel data length form does not match the transfer syntax")
        if pixels is None and 0x00280010 in self.raw:  # Rows without pixel data: the pydicom path says why
            raise _NotFast("image without pixel data")
        inner = Dataset(dict(self.raw))  # type: ignore[arg-type]  # keys are BaseTags
        encoding: Any = default_encoding
        if 0x00080005 in self.raw:
            encoding = convert_encodings(convert_raw_data_element(self.raw[0x00080005]).value)
        inner.set_original_encoding(self.implicit, True, encoding)
        self.dataset = FileDataset(name, inner, preamble=data[:128], file_meta=FileMetaDataset(meta),  # type: ignore[arg-type]
                                   is_implicit_VR=self.implicit, is_little_endian=True)
        self.dataset.set_original_encoding(self.implicit, True, encoding)

    def serialize(self) -> bytes:
        """The file as ``dcmwrite(ds, enforce_file_format=True)`` writes it, untouched elements copied as bytes."""
        from pydicom.charset import default_encoding
        from pydicom.filebase import DicomBytesIO
        from pydicom.filewriter import write_data_element

        ds = self.dataset
        meta = ds.file_meta
        for key, meta_key in (("SOPClassUID", "MediaStorageSOPClassUID"),
                              ("SOPInstanceUID", "MediaStorageSOPInstanceUID")):
            value = ds.get(key)  # what dcmwrite's enforce_file_format does to its copy of the meta
            if meta.get(meta_key) is None or (value and value != meta.get(meta_key)):
                setattr(meta, meta_key, value)
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, self.implicit
        fp.write(ds.preamble or b"\x00" * 128)
        fp.write(b"DICM")
        fp.write(_meta_bytes(meta))
        encoding = ds.get("SpecificCharacterSet", default_encoding)
        data, raw, spans = self.data, self.raw, self.spans
        elements = ds._dict
        for tag in sorted(elements):
            if tag & 0xFFFF == 0 and tag >> 16 > 6:
                continue  # no retired group lengths, as pydicom
            elem = elements[tag]
            if elem is raw.get(tag):
                start, stop = spans[tag]
                fp.write(data[start:stop])
                continue
            if elem.is_raw and getattr(elem, "length", _UNDEFINED) != _UNDEFINED:  # set as raw bytes by the engine
                body = bytes(elem.value or b"")
                fp.write(_header(int(tag), elem.VR or "", len(body), self.implicit) + body)
                continue
            elem = ds[tag]
            encoded = _encode(elem, self.implicit)
            if encoded is None:
                write_data_element(fp, elem, encoding)
            else:
                fp.write(encoded)
        return bytes(fp.getvalue())


_PAD_NUL = frozenset({"UI", "OB"})
_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})


def _encode(elem: Any, implicit: bool) -> bytes | None:
    """The bytes pydicom writes for a string element whose value is plain ASCII text (what the engine sets: UIDs,
    dates, times, pseudonyms, dummies); None when pydicom's own writer must do it (sequences, numbers, names...)."""
    vr = elem.VR
    if vr not in _STRING_VRS:
        return None
    value = elem.value
    if value is None or value == "":
        text = ""
    elif isinstance(value, str):
        text = value
    elif type(value).__name__ == "MultiValue" and all(isinstance(v, str) for v in value):
        text = "\\".join(value)
    else:
        return None
    if not text.isascii():
        return None
    body = text.encode("ascii")
    if len(body) & 1:
        body += b"\x00" if vr in _PAD_NUL else b" "
    return _header(int(elem.tag), vr, len(body), implicit) + body


def _header(tag: int, vr: str, length: int, implicit: bool) -> bytes:
    if implicit:
        return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, length)
    if vr.encode() in _LONG_VRS:
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    if length > 0xFFFF:
        raise _NotFast("value too long for its VR")
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _meta_bytes(meta: Any) -> bytes:
    """The file meta group as ``write_file_meta_info(enforce_standard=True)`` writes it: its elements in tag order
    (explicit VR little endian), headed by a group length that counts them."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import validate_file_meta, write_data_element

    validate_file_meta(meta, enforce_standard=True)  # raises on what pydicom would refuse to write
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    for tag in sorted(meta._dict):
        if tag == 0x00020000:
            continue
        elem = meta._dict[tag]
        if elem.is_raw and elem.VR is not None:
            body.write(_header(int(tag), elem.VR, len(elem.value), False) + elem.value)
            continue
        elem = meta[tag]
        encoded = _encode(elem, False)
        if encoded is None:
            write_data_element(body, elem)
        else:
            body.write(encoded)
    content = body.getvalue()
    return struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(content)) + content


def anonymize_bytes(data: bytes, pseudonymizer: Pseudonymizer, name: str = "<bytes>") -> tuple[bytes, Any]:
    """Pseudonymized file bytes and the pseudonymized dataset (its elements may still be raw).

    The fast path when the file allows it, else pydicom's full read and write (``pydicom_path``); both run the one
    engine, so the output is element-for-element the same. ``Quarantined``/``InvalidDicom``/``ValidationError``
    name ``name``."""
    from diana_dcmdir import rawfile

    try:
        done = rawfile.anonymize(data, pseudonymizer, name)
    except (rawfile.Decline, struct.error, ValueError, KeyError, UnicodeDecodeError, LookupError):
        return dataset_path(data, pseudonymizer, name)
    _stage("raw")
    pseudonymizer.report.took("fast")
    return done


def anonymize_file(src: str | os.PathLike[str], dst: str | os.PathLike[str], pseudonymizer: Pseudonymizer,
                   name: str | None = None) -> Any:
    """Write the pseudonymized copy of file ``src`` to ``dst``; its dataset (as ``anonymize_bytes``). On the raw
    path the output is written as it is assembled: new elements, and slices of the input for everything unchanged
    (the pixel data), never joined into a second copy of the file in memory."""
    from diana_dcmdir import rawfile

    name = name or os.path.basename(src)
    with open(src, "rb") as fin:
        data = fin.read()
    try:
        pieces, final = rawfile.anonymize_pieces(data, pseudonymizer, name)
    except (rawfile.Decline, struct.error, ValueError, KeyError, UnicodeDecodeError, LookupError):
        out, ds = dataset_path(data, pseudonymizer, name)
        with open(dst, "wb") as fout:
            fout.write(out)
        return ds
    _stage("raw")
    pseudonymizer.report.took("fast")
    view = memoryview(data)
    with open(dst, "wb") as fout:
        fout.writelines([view[p] if type(p) is slice else p for p in pieces])
    return rawfile.RawResult(lambda: Path(dst).read_bytes(), name, final)


def _stage(name: str) -> None:
    STAGES[name] = STAGES.get(name, 0) + 1


def dataset_path(data: bytes, pseudonymizer: Pseudonymizer, name: str = "<bytes>") -> tuple[bytes, Any]:
    """The engine on a pydicom Dataset of the file's raw elements, written back by copying the untouched ones (what
    ``rawfile`` declines comes here; what this declines goes to ``pydicom_path``)."""
    from diana_core.deid_profile import ALLOW_BURNED_IN
    from diana_dcmdir.anonymize import anonymize_dataset, burned_in_reason

    try:
        parsed = Parsed(data, name)
        if not pseudonymizer.profile.has(ALLOW_BURNED_IN) and burned_in_reason(parsed.dataset) is not None:
            raise _NotFast("at risk of burned-in text: decided (quarantined or cleaned) on the full dataset")
    except (_NotFast, struct.error, ValueError, KeyError, UnicodeDecodeError, LookupError):
        _stage("pydicom")
        return pydicom_path(data, pseudonymizer, name)
    anonymize_dataset(parsed.dataset, pseudonymizer, name=name)
    out = parsed.serialize()
    _stage("dataset")
    pseudonymizer.report.took("fast")
    return out, parsed.dataset


def pydicom_path(data: bytes, pseudonymizer: Pseudonymizer, name: str = "<bytes>") -> tuple[bytes, Any]:
    """The same through pydicom's full read and ``dcmwrite``: the reference the fast path is held to."""
    from diana_dcmdir import reading
    from diana_dcmdir.anonymize import anonymize_dataset

    ds = anonymize_dataset(reading.read_bytes(data, name), pseudonymizer, name=name)
    out = reading.dataset_bytes(ds)
    pseudonymizer.report.took("fallback")
    return out, ds
