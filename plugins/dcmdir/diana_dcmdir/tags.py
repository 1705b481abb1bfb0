"""Simplified tags of a pydicom dataset, decoded straight from its raw elements (what DcmDir's Dixels hold).

The same dict as the core's generic conversion (``Dixel.from_pydicom``: keyword -> plain str/int/float/list, nested
sequences as lists of dicts, binary and private elements left out) at a fraction of its cost: pydicom builds a
``DataElement`` per element (tag objects, hooks, validation), ~4x the header read itself. Common cases (explicit or
dictionary VR, little endian, one character set, no escape sequences, defined-length sequence items) are decoded
here by numeric tag; anything else (ambiguous or UN VRs, AE/AT/UR, values pydicom reinterprets, undecodable text)
goes through pydicom's own conversion, so the result is element-for-element the generic one
(``tests/test_dcmdir_tags.py`` compares both on every pydicom test file).
"""

from __future__ import annotations

import functools
import struct
from operator import itemgetter
from typing import Any

_DEFAULT_STRINGS = {"AS", "CS", "DA", "DT", "TM", "UI"}  # ASCII, split on "\", trailing " \0" stripped
_TEXTS = {"SH", "LO", "UC"}  # the dataset's character set, split on "\", each value's trailing " \0" stripped
_SINGLE_TEXTS = {"ST", "LT", "UT"}  # the dataset's character set, never split
_NUMBERS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "SV": "q", "UV": "Q"}
_SIZES = {vr: struct.calcsize("<" + fmt) for vr, fmt in _NUMBERS.items()}
_BINARY = {"OB", "OW", "OF", "OD", "OL", "OV"}
_SKIPPED_VRS = _BINARY | {"UN", "SQ"}  # the generic conversion leaves these out (sequences are recursed into)
_ITEM = (0xFFFE, 0xE000)
_UNDEFINED = 0xFFFFFFFF
_PIXEL_DATA = 0x7FE00010
_DEFAULT = "iso8859"  # pydicom's codec for datasets without a Specific Character Set


_KNOWN_VRS = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF", "OL", "OV",
               "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR", "US", "UT", "UV"}
_LONG_LENGTH_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}  # 4-byte lengths
_EMPTY_AS_BYTES = {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT", "SQ"}
_unpack_item = struct.Struct("<HHL").unpack_from
_unpack_tag = struct.Struct("<HH").unpack_from
_unpack_long = struct.Struct("<L").unpack_from
_unpack_short = struct.Struct("<H").unpack_from


@functools.cache
def _pydicom() -> tuple[dict[int, Any], Any]:
    """pydicom's data dictionary and raw element type, imported on first use (plugin import stays light)."""
    from pydicom.datadict import DicomDictionary
    from pydicom.dataelem import RawDataElement

    return DicomDictionary, RawDataElement


class _Fallback(Exception):
    """This element needs pydicom's own conversion."""


def _plain(value: Any) -> Any:
    """pydicom values (PersonName, MultiValue, DSfloat, IS, UID) as plain Python values, as the core does."""
    if isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _numbers(text: str, kind: type) -> Any:
    items = text.rstrip(" \x00").split("\\")
    try:
        values = [kind(v) for v in items]
    except ValueError:
        raise _Fallback from None  # e.g. IS "12.0" or an empty DS item: pydicom has its own rules
    return values[0] if len(values) == 1 else values


def _text(data: bytes, encoding: str | None) -> str:
    if encoding is None or 0x1B in data:
        raise _Fallback  # several character sets, or ISO 2022 escape sequences switching them mid-value
    try:
        return data.decode(encoding)
    except (UnicodeError, LookupError):
        raise _Fallback from None  # pydicom warns and substitutes; let it


def _value(vr: str, raw: Any, encoding: str | None) -> Any:
    """The plain value of a non-empty raw element, or ``_Fallback``."""
    data = raw.value
    if vr in _DEFAULT_STRINGS:
        values = data.decode("latin-1").rstrip(" \x00").split("\\")
        return values[0] if len(values) == 1 else values
    if vr in _NUMBERS:
        size = _SIZES[vr]
        if not raw.is_little_endian or len(data) % size:
            raise _Fallback
        numbers = struct.unpack(f"<{len(data) // size}{_NUMBERS[vr]}", data)
        return numbers[0] if len(numbers) == 1 else list(numbers)
    if vr == "DS":
        return _numbers(data.decode("latin-1"), float)
    if vr == "IS":
        return _numbers(data.decode("latin-1"), int)
    if vr in _TEXTS:
        values = [v.rstrip("\x00 ") for v in _text(data, encoding).split("\\")]
        return values[0] if len(values) == 1 else values
    if vr in _SINGLE_TEXTS:
        return _text(data, encoding).rstrip("\x00 ")
    if vr == "PN":
        values = _text(data.rstrip(b"\x00 "), encoding).split("\\")
        if any("=" in v for v in values):
            raise _Fallback  # component groups: PersonName rebuilds them
        return values[0] if len(values) == 1 else values
    raise _Fallback


def _items(raw: Any, charset: Any) -> list[dict[str, Any]]:
    """A defined-length sequence's items, as pydicom's ``read_sequence`` would read and convert them; anything
    beyond defined-length items of plain elements in little endian (undefined lengths, an item's own character set,
    unknown VRs) is ``_Fallback``: pydicom reads the whole sequence."""
    data, pos, out = raw.value, 0, []
    if not raw.is_little_endian:
        raise _Fallback
    while pos < len(data):
        if pos + 8 > len(data):
            raise _Fallback
        group, element, length = _unpack_item(data, pos)
        end = pos + 8 + length
        if (group, element) != _ITEM or length == _UNDEFINED or end > len(data):
            raise _Fallback
        # as pydicom's _is_implicit_vr for a sequence item: implicit when assumed, or when no VR letters follow
        implicit = raw.is_implicit_VR or (length >= 6 and not (0x40 < data[pos + 12] < 0x5B
                                                               and 0x40 < data[pos + 13] < 0x5B))
        out.append(_convert(_item_elements(data, pos + 8, end, implicit), charset))
        pos = end
    return out


def _item_elements(data: bytes, pos: int, end: int, implicit: bool) -> dict[int, Any]:
    """The raw elements of one item (``data[pos:end]``), as pydicom's ``data_element_generator`` yields them."""
    from pydicom.dataelem import RawDataElement

    elements: dict[int, Any] = {}
    while pos < end:
        if pos + 8 > end:
            raise _Fallback
        if implicit:
            group, element, length = _unpack_item(data, pos)
            vr = None
            pos += 8
        else:
            group, element = _unpack_tag(data, pos)
            vr = data[pos + 4:pos + 6].decode("latin-1")
            if vr not in _KNOWN_VRS:
                raise _Fallback  # pydicom may switch to implicit VR here
            if vr in _LONG_LENGTH_VRS:
                if pos + 12 > end:
                    raise _Fallback
                (length,) = _unpack_long(data, pos + 8)
                pos += 12
            else:
                (length,) = _unpack_short(data, pos + 6)
                pos += 8
        tag = group << 16 | element
        if length == _UNDEFINED or pos + length > end or tag in (0xFFFEE00D, 0x00080005):
            raise _Fallback  # undefined lengths, an early item delimiter, a character set of the item's own
        if length:
            value: bytes | None = data[pos:pos + length]
        else:
            value = b"" if vr in _EMPTY_AS_BYTES else None  # pydicom's raw empty value
        elements[tag] = RawDataElement(tag, vr, length, value, pos, implicit, True)  # type: ignore[arg-type]
        pos += length
    return elements


def _encoding(charset: Any) -> str | None:
    """The one Python codec of a character set (pydicom's list of codecs), or None when text needs pydicom."""
    if isinstance(charset, str):
        return charset
    return charset[0] if len(charset) == 1 else None


def _config_is_default() -> bool:
    from pydicom import config

    return not (config.datetime_conversion or config.use_DS_decimal or config.use_DS_numpy or config.use_IS_numpy
                or config.use_none_as_empty_text_VR_value or not config.replace_un_with_known_vr
                or config.data_element_callback is not None)


def dataset_tags(ds: Any) -> dict[str, Any]:
    """Keyword -> plain value for every public, non-binary element of ``ds`` (sequences as lists of dicts)."""
    if not _config_is_default():  # a caller changed how pydicom converts values: follow pydicom all the way
        return _generic(ds, list(ds._dict))
    return _fast(ds)


def _fast(ds: Any) -> dict[str, Any]:
    return _convert(ds._dict, ds._character_set or [_DEFAULT], ds)


def _convert(elements: dict[Any, Any], charset: Any, ds: Any = None) -> dict[str, Any]:
    """Tags of a dataset's elements (``charset``: its Python codecs). ``ds`` is the dataset pydicom converts what is
    not decoded here; without one (a sequence item read by ``_items``) that is ``_Fallback`` for the sequence."""
    dictionary, raw_type = _pydicom()
    tags: dict[str, Any] = {}
    value: Any
    encoding = _encoding(charset)
    ints = list(map(int, elements))  # plain ints: BaseTag compares in Python
    items: Any = list(zip(ints, elements.values()))
    if ints != sorted(ints):  # the generic conversion's order: by tag
        items.sort(key=itemgetter(0))
    for tag, raw in items:
        if tag & 0x10000 or tag == _PIXEL_DATA:
            continue  # private groups have no keyword; pixel data is never a tag
        entry = dictionary.get(tag)
        if entry is None:
            continue  # no keyword (repeating groups, group lengths): pydicom's keyword is the dictionary's
        try:
            if type(raw) is not raw_type:
                raise _Fallback  # already a DataElement (converted, or a sequence of undefined length)
            vr = raw.VR or entry[0]
            if vr in _BINARY:
                continue
            data = raw.value
            if data is None or vr == "UN" or " or " in vr:
                raise _Fallback  # deferred or empty number; UN and ambiguous VRs are resolved by pydicom
            if vr in _DEFAULT_STRINGS and data:  # the most common case, inline
                values = data.decode("latin-1").rstrip(" \x00").split("\\")
                tags[entry[4]] = values[0] if len(values) == 1 else values
                continue
            if raw.length == 0:
                value = "" if vr != "SQ" else []  # an empty raw value is b"" only for text VRs: pydicom's ""
            elif vr == "SQ":
                value = _items(raw, charset)
            else:
                value = _value(vr, raw, encoding)
        except _Fallback:
            if ds is None:
                raise
            tags.update(_generic(ds, [tag]))
        else:
            tags[entry[4]] = value
    return tags


def _generic(ds: Any, tags: list[Any]) -> dict[str, Any]:
    """pydicom's element conversion for these tags, with the core's generic rules (keyword; binary VRs left out)."""
    out: dict[str, Any] = {}
    for tag in sorted(tags):
        elem = ds[tag]
        keyword = elem.keyword
        if not keyword or keyword == "PixelData":
            continue
        if elem.VR == "SQ":
            out[keyword] = [dataset_tags(item) for item in elem.value]
        elif elem.VR not in _SKIPPED_VRS:
            out[keyword] = _plain(elem.value)
    return out
