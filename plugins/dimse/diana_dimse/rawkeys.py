"""A few text elements of a DICOM file's header read straight from its first bytes (no dataset built; the dataset in either little-endian encoding, any pixel encoding): what the
dcmtk receiver needs per instance (SOP, study and series UIDs, patient ID), ~20x cheaper than pydicom's partial
read. Anything unusual (big endian, deflated, no preamble, a value that is not plain ASCII, the tags not within the
bytes given) answers None and the caller reads the file with pydicom."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable

LONG_VRS = frozenset((b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"))
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
IMPLICIT = "1.2.840.10008.1.2"
OTHER_ENCODINGS = ("1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99")  # big endian, deflated: None
_HEAD = struct.Struct("<HHI")  # implicit VR: group, element, 32-bit length
_SHORT = struct.Struct("<HH2sH")  # explicit VR: group, element, VR, 16-bit length
_LONG_LENGTH = struct.Struct("<I")
_NOT_PLAIN = re.compile(rb"[^\x20-\x5b\x5d-\x7e\x00]")  # printable ASCII but backslash, and NUL padding


class _Unusual(Exception):
    """The bytes are not the plain case this reader handles: the caller reads the file with pydicom."""


def _element(buf: bytes, pos: int, implicit: bool) -> tuple[int, bytes | None, int, int]:
    """(tag, VR or None, value length, value offset) of the element at ``pos``."""
    if pos + 8 > len(buf):
        raise _Unusual
    if implicit:
        group, elem, length = _HEAD.unpack_from(buf, pos)
        return (group << 16) | elem, None, length, pos + 8
    group, elem, vr, length = _SHORT.unpack_from(buf, pos)
    if group == 0xFFFE:  # item and delimiters: no VR, a 32-bit length
        return (group << 16) | elem, None, _LONG_LENGTH.unpack_from(buf, pos + 4)[0], pos + 8
    if vr in LONG_VRS:
        if pos + 12 > len(buf):
            raise _Unusual
        return (group << 16) | elem, vr, _LONG_LENGTH.unpack_from(buf, pos + 8)[0], pos + 12
    if not (vr.isalpha() and vr.isupper()):
        raise _Unusual  # not explicit VR after all
    return (group << 16) | elem, vr, length, pos + 8


def _skip_undefined(buf: bytes, pos: int, implicit: bool) -> int:
    """The offset after a sequence of undefined length whose items start at ``pos``."""
    while True:
        tag, _, length, pos = _element(buf, pos, implicit)
        if tag == SEQUENCE_END:
            return pos
        if tag != ITEM:
            raise _Unusual
        if length != UNDEFINED:
            pos += length
            continue
        while True:  # an item of undefined length: its elements up to the item delimiter
            tag, vr, length, pos = _element(buf, pos, implicit)
            if tag == ITEM_END:
                break
            if length == UNDEFINED:
                pos = _skip_undefined(buf, pos, implicit or vr == b"UN")
            else:
                pos += length


def _walk(buf: bytes, pos: int, implicit: bool, wanted: frozenset[int], last: int, found: dict[int, bytes],
          stop_group: int | None = None, whole: bool = False) -> int:
    """Collect the ``wanted`` top-level values from ``pos`` until a tag past ``last`` (or past group
    ``stop_group``: the file meta; or the end of ``buf`` when it is the ``whole`` file); where it stopped."""
    while pos < len(buf):
        if stop_group is not None and pos + 2 <= len(buf) and buf[pos] | (buf[pos + 1] << 8) != stop_group:
            return pos
        tag, vr, length, start = _element(buf, pos, implicit)
        if tag > last:
            return pos
        if length == UNDEFINED:
            if vr is not None and vr not in (b"SQ", b"UN") or tag in wanted:
                raise _Unusual  # encapsulated pixel data before our tags, or a wanted tag that is a sequence
            pos = _skip_undefined(buf, start, implicit or vr == b"UN")
            continue
        pos = start + length
        if tag in wanted:
            if pos > len(buf):
                raise _Unusual
            found[tag] = buf[start:pos]
    if stop_group is None and not whole:
        raise _Unusual  # the bytes ended before the last wanted tag: the caller reads more
    return pos


def _text(value: bytes) -> str:
    if _NOT_PLAIN.search(value):
        raise _Unusual  # a character set, control characters or several values: pydicom decodes those
    return value.decode("ascii").rstrip("\x00 ")


def text_keys(head: bytes, tags: Iterable[int], whole: bool = False) -> dict[int, str] | None:
    """The values of ``tags`` (text VRs, top level, after the file meta) found in ``head``, the start of a DICOM
    file with preamble (or the ``whole`` file); a tag absent from the header is absent from the answer. None when
    this reader cannot answer for sure (see the module's docstring)."""
    wanted = frozenset(tags)
    try:
        if len(head) < 132 or head[128:132] != b"DICM":
            return None
        meta: dict[int, bytes] = {}
        pos = _walk(head, 132, False, frozenset((0x00020010,)), 0x0002FFFF, meta, stop_group=0x0002)
        syntax = _text(meta.get(0x00020010, b""))
        if not syntax or syntax in OTHER_ENCODINGS:
            return None
        found: dict[int, bytes] = {}
        _walk(head, pos, syntax == IMPLICIT, wanted, max(wanted), found, whole=whole)
        return {tag: _text(value) for tag, value in found.items()}
    except (_Unusual, struct.error, UnicodeDecodeError):
        return None
