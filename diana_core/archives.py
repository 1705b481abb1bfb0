"""Zip archives Diana accepts (study zips, uploads): members streamed under limits, so a zip bomb is refused early.

Every member is checked twice: its declared sizes against the limits before a byte is inflated, then the bytes
really produced while streaming (a header can lie). Memory stays below one member (at most ``max_member`` and at
most ``max_ratio`` times its compressed size); nested archives are refused, never unpacked.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from typing import IO

from attrs import define

from diana_core.errors import ArchiveRefused, InvalidDicom

_CHUNK = 1 << 20
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_RATIO_FLOOR = 1 << 20  # members smaller than this are never refused for their ratio (tiny blank files compress well)


@define(frozen=True)
class ZipLimits:
    """Caps for one archive; a service file sets them as ``zip_limits: {max_member: ..., max_ratio: ...}``."""

    max_member: int = 1 << 30  # bytes of one inflated member (1 GiB: a large multi-frame instance fits)
    max_total: int = 64 << 30  # inflated bytes of the whole archive
    max_ratio: float = 200.0  # inflated / compressed size of a member; DICOM deflates 2-10x, bombs ~1000x
    max_members: int = 50_000  # a large study has a few thousand instances


class _Guard:
    def __init__(self, limits: ZipLimits, where: str) -> None:
        self.limits, self.where, self.total = limits, where, 0

    def refuse(self, why: str) -> ArchiveRefused:
        return ArchiveRefused(f"{self.where}: refused: {why}; if the archive is genuine, raise zip_limits in the "
                              "service file")

    def preflight(self, archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
        members = [i for i in archive.infolist() if not i.is_dir()]
        lim = self.limits
        if len(members) > lim.max_members:
            raise self.refuse(f"{len(members)} members (limit {lim.max_members})")
        declared = sum(i.file_size for i in members)
        if declared > lim.max_total:
            raise self.refuse(f"{_size(declared)} once unpacked (limit {_size(lim.max_total)})")
        packed = sum(i.compress_size for i in members)
        if declared > _RATIO_FLOOR and declared > lim.max_ratio * max(packed, 1):  # many small members add up
            raise self.refuse(f"the members have a compression ratio over {lim.max_ratio:g} together")
        for info in members:
            self.check_member(info, info.file_size)
        return members

    def check_member(self, info: zipfile.ZipInfo, produced: int) -> None:
        lim, name = self.limits, _label(info)
        if produced > lim.max_member:
            raise self.refuse(f"member {name} inflates to more than {_size(lim.max_member)}")
        if produced > _RATIO_FLOOR and produced > lim.max_ratio * max(info.compress_size, 1):
            raise self.refuse(f"member {name} has a compression ratio over {lim.max_ratio:g}")
        if produced > info.file_size:
            raise self.refuse(f"member {name} inflates to more than its declared {_size(info.file_size)}")

    def read(self, archive: zipfile.ZipFile, info: zipfile.ZipInfo, keep: bool = True) -> bytes:
        parts: list[bytes] = []
        produced = 0
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                if produced == 0 and chunk[:4] in _ZIP_MAGIC:
                    raise self.refuse(f"member {_label(info)} is itself a zip archive (nested archives are not "
                                      "unpacked)")
                produced += len(chunk)
                self.total += len(chunk)
                self.check_member(info, produced)
                if self.total > self.limits.max_total:
                    raise self.refuse(f"more than {_size(self.limits.max_total)} once unpacked")
                if keep:
                    parts.append(chunk)
        return b"".join(parts)


def _label(info: zipfile.ZipInfo) -> str:
    return repr(os.path.basename(info.filename) or info.filename)


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _declared_entries(fp: IO[bytes]) -> int | None:
    """Member count from the end-of-central-directory record (zip64 too), read before zipfile parses every entry."""
    fp.seek(0, os.SEEK_END)
    size = fp.tell()
    fp.seek(max(0, size - (1 << 16) - 22))
    tail = fp.read()
    fp.seek(0)
    at = tail.rfind(b"PK\x06\x06")
    if at >= 0 and len(tail) >= at + 40:
        return int(struct.unpack_from("<Q", tail, at + 32)[0])
    at = tail.rfind(b"PK\x05\x06")
    if at >= 0 and len(tail) >= at + 12:
        return int(struct.unpack_from("<H", tail, at + 10)[0])
    return None


@contextlib.contextmanager
def _open(source: str | os.PathLike[str] | bytes | IO[bytes], guard: _Guard) -> Iterator[zipfile.ZipFile]:
    with contextlib.ExitStack() as stack:
        if isinstance(source, (bytes, bytearray)):
            fp: IO[bytes] = io.BytesIO(source)
        elif isinstance(source, (str, os.PathLike)):
            fp = stack.enter_context(open(source, "rb"))
        else:
            fp = source
        entries = _declared_entries(fp)
        if entries is not None and entries > guard.limits.max_members:  # before parsing a huge directory
            raise guard.refuse(f"{entries} members (limit {guard.limits.max_members})")
        try:
            archive = stack.enter_context(zipfile.ZipFile(fp))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
            raise InvalidDicom(f"{guard.where}: not a readable zip archive ({exc})") from None
        yield archive


def iter_members(source: str | os.PathLike[str] | bytes | IO[bytes], where: str,
                 limits: ZipLimits | None = None) -> Iterator[tuple[str, bytes]]:
    """(member name, inflated bytes) for each file member, one at a time, within ``limits``.

    Raises ArchiveRefused (an InvalidDicom) naming ``where`` and the member before the limit is overrun.
    """
    guard = _Guard(limits or ZipLimits(), where)
    with _open(source, guard) as archive:
        for info in guard.preflight(archive):
            try:
                data = guard.read(archive, info)
            except (zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
                raise InvalidDicom(f"{where}: member {_label(info)} is unreadable ({exc})") from None
            yield info.filename, data


# archives this process wrote itself (path -> identity of the file then): their members are the bytes we put in,
# so inflating them again to look for a bomb is wasted work (~8 % of a collect). Any change to the file (another
# writer, a replaced file) changes the identity and the archive is checked like any other.
_OWN: OrderedDict[str, tuple[int, int, int, int]] = OrderedDict()
_OWN_MAX = 4096
_own_lock = threading.Lock()


def _identity(path: str) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def mark_own_archive(path: str | os.PathLike[str]) -> None:
    """Record that this process wrote the (complete, closed) archive at ``path``: ``check_archive`` trusts it
    while the file is unchanged."""
    key = os.path.abspath(path)
    ident = _identity(key)
    if ident is None:
        return
    with _own_lock:
        _OWN[key] = ident
        _OWN.move_to_end(key)
        while len(_OWN) > _OWN_MAX:
            _OWN.popitem(last=False)


def is_own_archive(source: object) -> bool:
    """Whether ``source`` is a path this process wrote with ``mark_own_archive`` and nobody changed since."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    key = os.path.abspath(source)
    with _own_lock:
        known = _OWN.get(key)
    return known is not None and known == _identity(key)


def check_archive(source: str | os.PathLike[str] | bytes | IO[bytes], where: str,
                  limits: ZipLimits | None = None) -> int:
    """Inflate every member without keeping it (before handing the archive to a server that unpacks it itself);
    returns the member count. Raises ArchiveRefused / InvalidDicom like ``iter_members``. An archive this
    process wrote itself (``mark_own_archive``, unchanged since) is trusted: only its directory is read."""
    guard = _Guard(limits or ZipLimits(), where)
    if is_own_archive(source):
        with _open(source, guard) as archive:
            return len([i for i in archive.infolist() if not i.is_dir()])
    with _open(source, guard) as archive:
        members = guard.preflight(archive)
        for info in members:
            try:
                guard.read(archive, info, keep=False)
            except (zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
                raise InvalidDicom(f"{where}: member {_label(info)} is unreadable ({exc})") from None
        return len(members)
