"""Zip bombs of several shapes, written byte by byte (a 1 GiB member costs a 1 MiB file and no CPU to build).

The deflate stream of zeros is one full-flushed 1 MiB block repeated (a full flush resets the compressor, so each
block is identical), closed by an empty final block. CRCs are left 0: a reader that stops at the limit never gets
to check them, and one that does not stop is exactly what the tests catch.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

MiB = 1 << 20
_FINAL = b"\x03\x00"  # an empty final fixed-Huffman block


def deflated_zeros(mib: int) -> bytes:
    """A raw deflate stream inflating to ``mib`` MiB of zero bytes (about 1 KiB per MiB)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = comp.compress(bytes(MiB)) + comp.flush(zlib.Z_FULL_FLUSH)
    return block * mib + _FINAL


def raw_zip(members: list[tuple[str, bytes, int]]) -> bytes:
    """A zip of (name, raw deflate data, declared inflated size) members, written without zipfile's checks."""
    out = io.BytesIO()
    central = []
    for name, data, size in members:
        offset = out.tell()
        encoded = name.encode()
        out.write(struct.pack("<4s2B4HL2L2H", b"PK\x03\x04", 20, 0, 0, 8, 0, 33, 0, len(data), size,
                              len(encoded), 0))
        out.write(encoded)
        out.write(data)
        central.append(struct.pack("<4s4B4HL2L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0, 8, 0, 33, 0, len(data), size,
                                   len(encoded), 0, 0, 0, 0, 0o100644 << 16, offset) + encoded)
    start = out.tell()
    for record in central:
        out.write(record)
    size_cd = out.tell() - start
    out.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), size_cd, start, 0))
    return out.getvalue()


def one_huge_member(folder: Path) -> Path:
    """1 MiB on disk, one member of 1 GiB."""
    return _write(folder / "huge.zip", raw_zip([("CT000001.dcm", deflated_zeros(1024), 1024 * MiB)]))


def many_members(folder: Path, count: int = 60_000) -> Path:
    """``count`` members of 0.9 MiB each (each under the per-member ratio floor; 51 GiB together)."""
    size = 900 * 1024
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    member = comp.compress(bytes(size)) + comp.flush()
    return _write(folder / "many.zip", raw_zip([(f"IM{i:06d}.dcm", member, size) for i in range(count)]))


def high_ratio(folder: Path) -> Path:
    """A 64 MiB member of zeros (ratio ~1000) beside nothing else: under the size cap, over the ratio cap."""
    return _write(folder / "ratio.zip", raw_zip([("IM000001.dcm", deflated_zeros(64), 64 * MiB)]))


def lying_header(folder: Path) -> Path:
    """A member that declares 4 KiB and inflates to 512 MiB."""
    return _write(folder / "liar.zip", raw_zip([("IM000001.dcm", deflated_zeros(512), 4096)]))


def nested(folder: Path) -> Path:
    """A plain zip holding the one-huge-member bomb (stored, so the outer archive looks harmless)."""
    inner = raw_zip([("CT000001.dcm", deflated_zeros(1024), 1024 * MiB)])
    path = folder / "nested.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as outer:
        outer.writestr("study/inner.zip", inner)
    return path


SHAPES = {"one_huge_member": one_huge_member, "many_members": many_members, "high_ratio": high_ratio,
          "lying_header": lying_header, "nested": nested}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
