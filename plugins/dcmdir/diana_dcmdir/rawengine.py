"""The one engine on raw bytes: the common file (little endian, plain-ASCII values where something changes) is
de-identified without a pydicom Dataset. Elements are parsed with precompiled structs, decided by the profile's
memoized verdicts (``deid_plan``), changed values encoded as pydicom encodes them (``deid_context.raw_text``), and the
output joined from slices of the input: runs of untouched elements and the pixel data are copied, never decoded.

The output is byte for byte what ``rawpath.Parsed`` (the engine on a dataset of raw elements) writes; anything this
module does not model raises ``Decline`` and the caller takes that path instead. The differential test holds both.
"""

from __future__ import annotations

import functools
import struct
from typing import Any

from diana_dcmdir import deid_plan
from diana_dcmdir.deid_context import raw_text
from diana_dcmdir.deid_plan import ACCESSION, CONVERT, DROP, KEEP, PATIENT_ID, RAW

_explicit_head = struct.Struct("<HH2sH").unpack_from  # group, element, VR, 16-bit length
_implicit_head = struct.Struct("<HHI").unpack_from  # group, element, 32-bit length
_u32 = struct.Struct("<I").unpack_from
_u64 = struct.Struct("<Q").unpack_from  # an element header: tag, VR and 16-bit length (or tag and 32-bit length)
_unpack_tag = struct.Struct("<HH").unpack_from
_REENCODE = 6  # a verdict of its own for the top-level character set (see _File.walk)
_pack_explicit = struct.Struct("<HH2sH").pack
_pack_long = struct.Struct("<HH2sHI").pack
_pack_implicit = struct.Struct("<HHI").pack
_LONG = {vr: vr.decode() for vr in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UN", b"UR", b"UT",
                                    b"SV", b"UV")}
_SHORT = {vr: vr.decode() for vr in (b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO",
                                     b"LT", b"PN", b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US")}
_LONG_NAMES = frozenset(_LONG.values())
_EXPLICIT_LE, _IMPLICIT_LE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
_NOT_HERE = frozenset({"1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"})  # deflated, big endian
_ITEM, _ITEM_END, _SEQ_END, _UNDEFINED = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD, 0xFFFFFFFF
_PIXEL_DATA, _CHARSET, _SOP_CLASS, _SOP_INSTANCE = 0x7FE00010, 0x00080005, 0x00080016, 0x00080018
_ITEM_DELIMITER = _pack_implicit(0xFFFE, 0xE00D, 0)
_SEQ_DELIMITER = _pack_implicit(0xFFFE, 0xE0DD, 0)
_META_KEEP = (0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013)

Element = tuple[int, Any, int, int, int, int]  # tag, VR (None: implicit), header, value start, value end, stop


class Decline(Exception):
    """Not modelled here: the caller takes the dataset path (the reason is for debugging, never shown)."""


def header(tag: int, vr: str, length: int, implicit: bool) -> bytes:
    """An element header as pydicom writes it (little endian)."""
    if implicit:
        return _pack_implicit(tag >> 16, tag & 0xFFFF, length)
    if vr in _LONG_NAMES:
        return _pack_long(tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    if length > 0xFFFF:
        raise Decline("value too long for its VR")
    return _pack_explicit(tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _padded(text: str, vr: str) -> bytes:
    body = text.encode("ascii")
    if len(body) & 1:
        body += b"\x00" if vr == "UI" else b" "
    return body


Edit = tuple[int, int, int, Any]  # where it starts, the byte after it, tag, new bytes (None: removed)


@functools.lru_cache(maxsize=8192)
def text_element(tag: int, vr: str, text: str, implicit: bool) -> bytes:
    """A string element as pydicom writes it (the values set on every file of a study repeat)."""
    body = _padded(text, vr)
    return header(tag, vr, len(body), implicit) + body


class _File:
    """One file's bytes, its encoding and the walk's state. At the top level, ``scan`` keeps the elements of the
    ``watch`` tags in ``index`` and where each tag of ``inserts`` would go in ``inserted_at``."""

    def __init__(self, data: bytes, implicit: bool, plan: deid_plan.Plan, watch: frozenset[int] = frozenset(),
                 inserts: tuple[int, ...] = ()) -> None:
        self.data, self.implicit, self.plan = data, implicit, plan
        self.watch, self.inserts = watch, inserts
        self.counts: dict[str, int] = {}
        self.ctx: Any = None
        self.index: dict[int, Element] = {}
        self.inserted_at: dict[int, int] = {}
        self.elements = 0

    def scan(self, pos: int, end: int, in_item: bool, top: bool) -> tuple[dict[int, Edit], list[Element], int, int]:
        """Parse the elements from ``pos`` to ``end`` (an undefined-length item: to its delimiter) and decide the
        ones the verdict alone settles: (removals, the elements left to ``walk``, where the elements end, where
        parsing stopped). The fast path's hottest loop: an element's tag and VR bytes are looked up once in a memo
        of what they mean (tag, VR, verdict, header size, watched), then only its length is unpacked."""
        data = self.data
        heads = self.plan.heads.setdefault((top, self.watch if top else None), {})
        mask = 0xFFFFFFFF if self.implicit else 0xFFFFFFFFFFFF  # the tag (and VR) of the 8 header bytes
        edits: dict[int, Edit] = {}
        work: list[Element] = []
        index = self.index if top else {}
        inserts = (*self.inserts, 1 << 40) if top else (1 << 40,)
        j, following = 0, inserts[0]
        kept = count = removed = 0
        last = run_tag = run_head = run_stop = -1
        u64, u32 = _u64, _u32
        keep, drop, undefined = KEEP, DROP, _UNDEFINED
        while pos < end:
            word = u64(data, pos)[0]
            entry = heads.get(word & mask)
            if entry is None:
                entry = self.head(pos, end, top, heads, word & mask)
            tag, vr, kind, hlen, watched = entry
            if hlen == 8:
                length, start = word >> 48, pos + 8
            elif hlen == 12:
                length, start = u32(data, pos + 8)[0], pos + 12
            else:
                length, start = word >> 32, pos + 8
            if start > end:
                raise Decline("element header cut short")
            if tag <= last:
                raise Decline("elements out of order")
            last = tag
            if length == undefined:
                if kind < 0:
                    vend = stop = start
                elif self.implicit or not (vr == "SQ" or (tag == _PIXEL_DATA and top and vr in ("OB", "OW"))):
                    raise Decline("undefined length not modelled")
                elif kind == keep and not top:
                    raise Decline("a kept nested sequence of undefined length: pydicom re-encodes it")
                else:
                    vend = self.skip_items(start, end)
                    stop = vend + 8
            else:
                vend = stop = start + length
            if stop > end:
                raise Decline("value cut short")
            if kind == keep:
                kept += 1
            elif kind == drop:  # consecutive removals (private groups) make one edit, unless a later step reads them
                removed += 1
                if pos == run_stop and not watched:
                    run_stop = stop
                else:
                    if run_tag >= 0:
                        edits[run_tag] = (run_head, run_stop, run_tag, None)
                    if watched:
                        edits[tag] = (pos, stop, tag, None)
                        run_tag = run_stop = -1
                    else:
                        run_tag, run_head, run_stop = tag, pos, stop
            elif kind < 0:  # a delimiter
                if in_item and tag == _ITEM_END:
                    if run_tag >= 0:
                        edits[run_tag] = (run_head, run_stop, run_tag, None)
                    return edits, self._settle(work, kept, removed), pos, pos + 8
                raise Decline("a stray delimiter")
            else:
                work.append((tag, vr, pos, start, vend, stop))
            count += 1
            if watched:
                index[tag] = (tag, vr, pos, start, vend, stop)
            while following <= tag:
                if following < tag:
                    self.inserted_at[following] = pos
                j += 1
                following = inserts[j]
            pos = stop
        if in_item:
            raise Decline("item not delimited")
        if run_tag >= 0:
            edits[run_tag] = (run_head, run_stop, run_tag, None)
        while following < 1 << 40:
            self.inserted_at[following] = pos
            j += 1
            following = inserts[j]
        if top:
            self.elements = count
        return edits, self._settle(work, kept, removed), pos, pos

    def head(self, pos: int, end: int, top: bool, heads: dict[int, Any], key: int) -> tuple[int, Any, int, int, bool]:
        """What an element header's tag and VR bytes (``key``) mean, remembered in ``heads``."""
        data = self.data
        if pos + 8 > end:
            raise Decline("element header cut short")
        if len(heads) >= 200_000:  # odd headers (delimiter lengths) must not grow it without end
            heads.clear()
        group, element = _unpack_tag(data, pos)
        tag = group << 16 | element
        if group == 0xFFFE:  # a delimiter, or a stray item (its length field reads as a VR)
            entry: tuple[int, Any, int, int, bool] = (tag, "", -1, 0, False)
            heads[key] = entry
            return entry
        vr: str | None = None
        if self.implicit:
            hlen = 0
        else:
            vr_bytes = data[pos + 4:pos + 6]
            hlen = 8 if vr_bytes in _SHORT else 12 if vr_bytes in _LONG else 0
            if not hlen:
                raise Decline("unknown VR")
            vr = _SHORT.get(vr_bytes) or _LONG[vr_bytes]
        kind = self.plan.verdict(tag, vr, top)[0]  # (clears ``heads`` too when the memo is full)
        if tag == _CHARSET and kind != DROP:
            if not top:
                raise Decline("a character set inside an item")
            kind = _REENCODE  # read by the writer, so re-encoded: see walk
        entry = (tag, vr, kind, hlen, top and tag in self.watch)
        heads[key] = entry
        return entry

    def _settle(self, work: list[Element], kept: int, removed: int) -> list[Element]:
        counts = self.counts
        if kept:
            counts["kept"] = counts.get("kept", 0) + kept
        if removed:
            counts["removed"] = counts.get("removed", 0) + removed
        return work

    def skip_items(self, pos: int, end: int) -> int:
        """Where the sequence delimiter of an undefined-length sequence (or pixel data) whose items start at ``pos``
        lies."""
        data = self.data
        while pos + 8 <= end:
            group, element, length = _implicit_head(data, pos)
            tag = group << 16 | element
            if tag == _SEQ_END:
                return pos
            if tag != _ITEM:
                raise Decline("not an item inside a sequence")
            if length == _UNDEFINED:
                pos = self.skip_item(pos + 8, end)
            else:
                pos += 8 + length
        raise Decline("sequence not delimited")

    def skip_item(self, pos: int, end: int) -> int:
        """The position after the delimiter of an undefined-length item (explicit VR) whose elements start at
        ``pos``."""
        data = self.data
        while pos + 8 <= end:
            group, element, vr_bytes, length = _explicit_head(data, pos)
            if group == 0xFFFE and element == 0xE00D:
                return pos + 8
            if vr_bytes in _LONG:
                length, start = _u32(data, pos + 8)[0], pos + 12
            elif vr_bytes in _SHORT:
                start = pos + 8
            else:
                raise Decline("unknown VR in an item")
            if length == _UNDEFINED:
                if vr_bytes != b"SQ":
                    raise Decline("undefined length inside an item")
                pos = self.skip_items(start, end) + 8
            else:
                pos = start + length
        raise Decline("item not delimited")

    def walk(self, work: list[Element], edits: dict[int, Edit], top: bool) -> None:
        """The engine's verdicts on the elements ``scan`` left: their new bytes into ``edits``."""
        data, implicit, ctx, counts = self.data, self.implicit, self.ctx, self.counts
        verdict = self.plan.verdict
        for tag, vr_raw, head, start, vend, stop in work:
            kind, vr, action = verdict(tag, vr_raw, top)
            if kind == KEEP:  # the character set: read by the writer, so re-encoded (trailing padding normalized)
                edits[tag] = (head, stop, tag, self.text_element(tag, "CS", self.text(start, vend)))
                self.count("kept")
                continue
            if kind == RAW:
                if vr_raw not in (vr, None):
                    raise Decline("a raw VR the engine converts")
                done = raw_text(data[start:vend], vr, action, ctx)
                if done is None:
                    raise Decline("a value pydicom must convert")
                body, counted = done
                if body is not None:
                    edits[tag] = (head, stop, tag, header(tag, vr, len(body), implicit) + body)
                counts[counted] = counts.get(counted, 0) + 1
                continue
            if kind != CONVERT:
                raise Decline("a private element kept or a replaced value")
            edits[tag] = (head, stop, tag, self.convert(tag, vr, action, start, vend, top))

    def count(self, action: str) -> None:
        self.counts[action] = self.counts.get(action, 0) + 1

    def text(self, start: int, vend: int) -> str:
        """A value as pydicom reads a plain-ASCII string (trailing spaces and NULs dropped); Decline otherwise."""
        value = self.data[start:vend]
        if not value.isascii() or b"\x1b" in value:
            raise Decline("not plain ASCII")
        return value.decode("ascii").rstrip(" \x00")

    def text_element(self, tag: int, vr: str, text: str) -> bytes:
        return text_element(tag, vr, text, self.implicit)

    def convert(self, tag: int, vr: str, action: str | None, start: int, vend: int, top: bool) -> bytes | None:
        """The conversion branch of ``anonymize._walk`` for what it meets in ordinary files: sequences, person
        names, nested patient ids and accession numbers (the element pydicom writes, None when removed)."""
        if vr == "SQ":
            if action == "Z":
                raise Decline("an emptied sequence")
            if action == "D":
                self.count("removed")
                return None
            body = self.sequence(start, vend)
            self.count("cleaned" if action == "C" else "kept")
            undefined = self.data[start - 4:start] == b"\xff\xff\xff\xff"
            if undefined:
                return header(tag, "SQ", _UNDEFINED, self.implicit) + body + _SEQ_DELIMITER
            return header(tag, "SQ", len(body), self.implicit) + body
        if vr == "PN":
            if action == "D":
                raise Decline("a dummy person name")
            if action == "Z":
                self.count("emptied")
                return header(tag, vr, 0, self.implicit)
            if self.text(start, vend) == "":
                self.count("kept")
                return header(tag, vr, 0, self.implicit)
            self.count("removed")
            return None
        if tag in (PATIENT_ID, ACCESSION) and action not in ("Z", "D"):
            text = self.text(start, vend)
            if text == "":
                self.count("kept")
                return self.text_element(tag, vr, "")
            if "\\" in text:
                raise Decline("a multi-valued identifier")
            self.count("replaced")
            if top:  # set from the replacement map afterwards
                return self.text_element(tag, vr, text)
            ctx = self.ctx
            if tag == PATIENT_ID:
                old, new = ctx.patient_id
                value = new if text == old else ctx.pz.accession(f"patient|{text}")
            else:
                old, new = ctx.accession
                value = new if text == old and new else ctx.pz.accession(text)
            return self.text_element(tag, vr, value)
        raise Decline("a conversion not modelled")

    def sequence(self, pos: int, end: int) -> bytes:
        """A walked sequence's items as pydicom writes them (each item's length form kept, delimiters normalized)."""
        data = self.data
        pieces: list[bytes] = []
        while pos < end:
            if pos + 8 > end:
                raise Decline("item header cut short")
            group, element, length = _implicit_head(data, pos)
            if group << 16 | element != _ITEM:
                raise Decline("not an item inside a sequence")
            if length == _UNDEFINED:
                edits, work, elements_end, stop = self.scan(pos + 8, end, in_item=True, top=False)
            else:
                stop = pos + 8 + length
                if stop > end:
                    raise Decline("item cut short")
                edits, work, elements_end, _ = self.scan(pos + 8, stop, in_item=False, top=False)
            self.walk(work, edits, top=False)
            body = self.join(self.pieces(edits, pos + 8, elements_end))
            if length == _UNDEFINED:
                pieces.append(_pack_implicit(0xFFFE, 0xE000, _UNDEFINED) + body + _ITEM_DELIMITER)
            else:
                pieces.append(_pack_implicit(0xFFFE, 0xE000, len(body)) + body)
            pos = stop
        return b"".join(pieces)

    def pieces(self, edits: dict[int, Edit], begin: int, end: int) -> list[Any]:
        """The bytes from ``begin`` to ``end`` with ``edits`` applied: new elements (bytes) and the runs between them
        (slices of the input, for the caller to copy: as memoryview slices, or in the kernel)."""
        out: list[Any] = []
        append = out.append
        cursor = begin
        for head, stop, _, new in sorted(edits.values()):
            if head > cursor:
                append(slice(cursor, head))
            if new is not None:
                append(new)
            if stop > cursor:  # an element put where a run of removed ones was leaves the cursor after the run
                cursor = stop
        if end > cursor:
            append(slice(cursor, end))
        return out

    def join(self, pieces: list[Any]) -> bytes:
        view = memoryview(self.data)
        return b"".join([view[p] if type(p) is slice else p for p in pieces])


