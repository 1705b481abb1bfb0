"""Zip archives in and out of a DcmDir folder: store every DICOM member of a zip (one member in memory at a time,
within the folder's ``zip_limits``), and zip the files of one study or series, streamed from disk file by file."""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Iterable
from typing import Any

from diana_core import BulkResult, Dixel
from diana_core.archives import iter_members
from diana_core.dicom import DicomLevel
from diana_core.errors import DianaError, NotFound, ValidationError
from diana_core.pseudonym import Pseudonymizer
from diana_dcmdir import reading


def put_zip(folder: Any, source: str | bytes | Dixel, pseudonymizer: Pseudonymizer | None = None) -> BulkResult:
    """Store every DICOM member of a zip (path, bytes, or a Dixel whose ``file`` is a zip) into the DcmDir
    ``folder``, one member in memory at a time within ``zip_limits`` (ArchiveRefused for a zip bomb); non-DICOM
    members (DICOMDIR, readme) and quarantined instances are counted as skipped."""
    from diana_dcmdir.anonymize import Quarantined

    if isinstance(source, Dixel):
        source = source.file or b""
    done, skipped, failed = 0, 0, []
    for name, data in iter_members(source, f"DcmDir {folder.name!r}", folder.zip_limits):
        base = os.path.basename(name)
        if base.upper() == "DICOMDIR" or not reading.is_dicom_bytes(data):
            skipped += 1
            continue
        try:
            folder.put(Dixel(file=data, meta={"FileName": base}, level=DicomLevel.INSTANCES),
                       pseudonymizer=pseudonymizer)
            done += 1
        except Quarantined:
            skipped += 1
        except DianaError as exc:
            failed.append((base, str(exc)))
    return BulkResult(done=done, skipped=skipped, failed=failed)


def write_zip(paths: Iterable[str], dest: str) -> int:
    """Write files into one zip at ``dest``, streamed from disk file by file; returns the member count."""
    directory = os.path.dirname(os.path.abspath(dest))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.getpid()}-", suffix=".zip.part", dir=directory)
    os.close(fd)
    count = 0
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for path in paths:
                archive.write(path, arcname=os.path.basename(path))
                count += 1
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return count


def get_zip(folder: Any, item: Dixel | str, dest: str, level: Any = DicomLevel.STUDIES) -> int:
    """Zip the files of one study of the DcmDir ``folder`` (a Dixel or a StudyInstanceUID; SERIES level uses
    SeriesInstanceUID) into ``dest``; returns the member count, NotFound when the folder has none."""
    lvl = DicomLevel.from_label(level)
    key = "SeriesInstanceUID" if lvl == DicomLevel.SERIES else "StudyInstanceUID"
    uid = item.tag(key) if isinstance(item, Dixel) else str(item)
    if not uid:
        raise ValidationError(f"DcmDir {folder.name!r}: get_zip needs a {key}")
    if lvl == DicomLevel.STUDIES:  # the study index: no header is read again
        paths: Iterable[str] = folder.studies().paths_of(str(uid))
    else:
        paths = (d.fn for d in folder.index(keys=("SeriesInstanceUID",)) if d.fn and d.tags.get(key) == uid)
    count = folder.write_zip(paths, dest)
    if count == 0:
        with contextlib.suppress(OSError):
            os.unlink(dest)
        raise NotFound(f"DcmDir {folder.name!r}: no files for {lvl} {uid}")
    return count
