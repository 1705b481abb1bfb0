"""DICOM files for C-STORE: what a put may be given (bytes, paths, Dixels, zips of a study) as payloads that read
into pydicom datasets, and received bytes as Dixels."""

from __future__ import annotations

import io
import os
import struct
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from diana_core.dixel import Dixel
from diana_core.errors import InvalidDicom, ValidationError

IMPLICIT_SYNTAXES = ("1.2.840.10008.1.2",)
DEFLATED_SYNTAXES = ("1.2.840.10008.1.2.1.99",)
BIG_ENDIAN = "1.2.840.10008.1.2.2"


class Payload:
    """One instance to send: bytes or a path, with a non-PHI label (file name or item number)."""

    __slots__ = ("data", "label", "path")

    def __init__(self, label: str, data: bytes | None = None, path: str | None = None) -> None:
        self.label, self.data, self.path = label, data, path

    def header(self) -> tuple[str, str, str] | None:
        """(SOP class, SOP instance, transfer syntax) of a file on disk that can be sent as stored (never decoded):
        a complete meta group that agrees with the dataset's own SOP class and instance UIDs, a dataset that
        starts as the meta's syntax says and is not deflated. None otherwise (the file is then decoded)."""
        if self.path is None:
            return None
        from pydicom.errors import InvalidDicomError
        from pydicom.filereader import read_dataset, read_preamble

        try:
            with open(self.path, "rb") as fh:  # one open: meta, then the dataset's first elements
                read_preamble(fh, False)
                meta = read_dataset(fh, is_implicit_VR=False, is_little_endian=True,
                                    stop_when=lambda tag, vr, length: tag.group != 2)
                offset = fh.tell()
                sop_class, sop_uid, ts = (str(meta.get(k, "")) for k in (
                    "MediaStorageSOPClassUID", "MediaStorageSOPInstanceUID", "TransferSyntaxUID"))
                if not (sop_class and sop_uid and ts) or ts in DEFLATED_SYNTAXES:
                    return None
                first = fh.read(6)
                explicit = ts not in IMPLICIT_SYNTAXES
                if len(first) < 6 or explicit != (first[4:6].isalpha() and first[4:6].isupper()):
                    return None  # the meta's syntax does not match the data (some writers do that): convert it
                fh.seek(offset)
                ds = read_dataset(fh, is_implicit_VR=not explicit, is_little_endian=ts != BIG_ENDIAN,
                                  stop_when=lambda tag, vr, length: tag > 0x00080018)
            same = str(ds.get("SOPClassUID", "")) == sop_class and str(ds.get("SOPInstanceUID", "")) == sop_uid
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError, AttributeError):
            return None  # the full read says precisely what is wrong
        return (sop_class, sop_uid, ts) if same else None

    def dataset(self) -> Any:
        """The pydicom dataset (with file meta); InvalidDicom names the file when it is not DICOM."""
        from pydicom import dcmread
        from pydicom.errors import InvalidDicomError

        try:
            source: Any = io.BytesIO(self.data) if self.data is not None else self.path
            try:
                ds = dcmread(source)
            except InvalidDicomError:  # no preamble/"DICM": a bare dataset, as some archives keep them
                if isinstance(source, io.BytesIO):
                    source.seek(0)
                ds = dcmread(source, force=True)
                _add_transfer_syntax(ds)
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError) as exc:
            raise InvalidDicom(f"{self.label} is not readable DICOM: {type(exc).__name__}") from None
        meta = getattr(ds, "file_meta", None)
        if meta is None or "TransferSyntaxUID" not in meta or "SOPClassUID" not in ds or "SOPInstanceUID" not in ds:
            raise InvalidDicom(f"{self.label} is not readable DICOM (no transfer syntax, SOP class or instance UID)")
        return ds


def _add_transfer_syntax(ds: Any) -> None:
    """File meta for a dataset read without one: the transfer syntax pydicom found it encoded in."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if len(ds) == 0:
        return
    meta = getattr(ds, "file_meta", None) or FileMetaDataset()
    if "TransferSyntaxUID" not in meta:
        implicit, little = ds.original_encoding
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else (
            ExplicitVRLittleEndian if little else ExplicitVRBigEndian)
        ds.file_meta = meta


def _zip_members(path: str | io.BytesIO, label: str) -> Iterator[Payload]:
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.is_dir() or info.filename.endswith("DICOMDIR"):
                continue
            yield Payload(f"{label}:{info.filename}", data=archive.read(info))


def payloads(item: Any, number: int = 1) -> Iterator[Payload]:
    """Payloads of one put item: bytes, a path (file, zip or folder), or a Dixel (``file`` bytes or FileName)."""
    if isinstance(item, Payload):
        yield item
        return
    if isinstance(item, Dixel):
        if item.file is not None:
            label = os.path.basename(item.fn) if item.fn else f"item {number}"
            if item.file[:4] == b"PK\x03\x04":  # a zip of instances (e.g. a study archive read as bytes)
                yield from _zip_members(io.BytesIO(item.file), label)
            else:
                yield Payload(label, data=item.file)
            return
        if not item.fn:
            raise ValidationError(f"item {item.summary()['id']} has no file bytes and no FileName to send")
        item = item.fn
    if isinstance(item, (bytes, bytearray)):
        yield from payloads(Dixel(file=bytes(item)), number)
        return
    if isinstance(item, (str, os.PathLike)):
        path = Path(item)
        if path.is_dir():
            for sub in sorted(p for p in path.rglob("*") if p.is_file()):
                yield Payload(sub.name, path=str(sub))
        elif zipfile.is_zipfile(path):
            yield from _zip_members(str(path), path.name)
        else:
            yield Payload(path.name, path=str(path))
        return
    raise ValidationError(f"cannot send a {type(item).__name__}: give bytes, a path or a Dixel")


def all_payloads(items: Iterable[Any]) -> Iterator[Payload]:
    for n, item in enumerate(items, start=1):
        yield from payloads(item, n)


def dixel_from_bytes(data: bytes, fn: str | None = None) -> Dixel:
    """An instance Dixel (tags, file bytes) from the bytes of a DICOM file."""
    from pydicom import dcmread

    ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
    return Dixel.from_pydicom(ds, fn=fn, file=data)


def last_tag(keys: Iterable[str]) -> int | None:
    """The largest tag among ``keys`` (keywords, "(gggg,eeee)" or "ggggeeee"), capped before the pixel data; None
    when a key is not in the DICOM dictionary (then only a whole header answers it)."""
    from pydicom.datadict import tag_for_keyword

    last = 0
    for key in keys:
        tag = tag_for_keyword(key)
        if tag is None:
            digits = key.strip("()").replace(",", "")
            if len(digits) != 8 or any(c not in "0123456789abcdefABCDEF" for c in digits):
                return None
            tag = int(digits, 16)
        last = max(last, tag)
    return min(last, 0x7FE0000F)


def read_keys(path: str, keys: Iterable[str], whole: Any) -> Any:
    """The header parsed only up to the last of ``keys`` (what routing conditions ask for, ~4x cheaper than the
    whole header of a CT); ``whole(path)`` (a full header-only read) when a key is unknown or the quick read fails."""
    from pydicom.errors import InvalidDicomError
    from pydicom.filereader import read_partial

    last = last_tag(keys)
    if last is None:
        return whole(path)
    try:
        with open(path, "rb") as fp:
            ds = read_partial(fp, stop_when=lambda tag, vr, length: tag > last)
    except (InvalidDicomError, EOFError, ValueError, KeyError, struct.error, OSError):
        return whole(path)  # names the file and the reason (InvalidDicom), or reads what the quick path cannot
    return ds if len(ds._dict) else whole(path)
