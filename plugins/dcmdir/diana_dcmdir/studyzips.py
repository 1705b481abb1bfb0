"""Study zips: a DcmDir with ``study_zips: true`` keeps each study as one zip named by its Orthanc study id.

What the Collector's "zip per study" delivery and archive-style folders need: put a study archive (pseudonymized
member by member when the folder is ``anonymizing``), find studies, check existence by the predicted study id,
get the zip back, delete it. Members are named by their Orthanc instance id, so no file name carries PHI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from typing import Any

from diana_core import BulkResult, Dixel
from diana_core.archives import iter_members
from diana_core.dicom import DicomLevel
from diana_core.errors import InvalidDicom, NotFound
from diana_core.processes import pid_alive
from diana_dcmdir import layout, reading
from diana_dcmdir.studies import STUDY_TAGS, study_oid


def zip_path(folder: Any, oid: str) -> str:
    """Where the zip of study ``oid`` lives (width/depth layout applies to its name)."""
    return str(folder.fullpath(f"{oid}.zip"))


def put_study_zip(folder: Any, source: str | bytes, pseudonymizer: Any = None) -> BulkResult:
    """Write one study zip from an archive (path or bytes), members read within the folder's ``zip_limits``,
    pseudonymized with ``pseudonymizer`` when given; returns the members stored (non-DICOM and quarantined
    members skipped)."""
    from diana_dcmdir.anonymize import Quarantined
    from diana_dcmdir.rawpath import anonymize_bytes

    os.makedirs(folder.path, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.getpid()}-", suffix=".zip.part", dir=folder.path)  # pid: see recover
    os.close(fd)
    done = skipped = 0
    oid: str | None = None
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as out:
            for name, data in iter_members(source, f"DcmDir {folder.name!r}", folder.zip_limits):
                base = os.path.basename(name)
                if not data or base.upper() == "DICOMDIR" or not reading.is_dicom_bytes(data):
                    skipped += 1
                    continue
                ds = reading.read_bytes(data, base, header_only=True)
                if pseudonymizer is not None:
                    try:  # named by the original's Orthanc id: archive member names may hold PHI
                        data, ds = anonymize_bytes(data, pseudonymizer, name=layout.instance_file_name(ds))
                    except Quarantined:
                        skipped += 1
                        continue
                this = study_oid(ds)
                if oid is None:
                    oid = this
                elif this != oid:
                    raise InvalidDicom(f"DcmDir {folder.name!r}: the archive holds more than one study")
                out.writestr(layout.instance_file_name(ds), data)
                done += 1
        if oid is None:
            raise InvalidDicom(f"DcmDir {folder.name!r}: the archive holds no DICOM file")
        dest = zip_path(folder, oid)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return BulkResult(done=done, skipped=skipped)


def study_zips(folder: Any) -> Iterator[str]:
    """Paths of the study zips in the folder (lazily)."""
    for path in folder.files():
        if path.endswith(".zip") and not os.path.basename(path).startswith("."):
            yield path


def study_dixel(path: str) -> Dixel:
    """The study Dixel of one zip: study tags from its first member, id from its name, instance count."""
    with zipfile.ZipFile(path) as archive:
        members = [i for i in archive.infolist() if not i.is_dir()]
        if not members:
            raise InvalidDicom(f"{os.path.basename(path)}: empty study zip")
        ds = reading.read_bytes(archive.read(members[0]), os.path.basename(path), header_only=True)
    tags = {k: str(ds.get(k)) for k in STUDY_TAGS if ds.get(k) not in (None, "")}
    oid = os.path.basename(path)[: -len(".zip")]
    return Dixel(meta={"ID": oid, "FileName": path, "InstanceCount": len(members)}, tags=tags,
                 level=DicomLevel.STUDIES)


def find_studies(folder: Any, query: dict[str, Any]) -> list[Dixel]:
    wanted = {k: str(v) for k, v in query.items() if v not in (None, "", "*")}
    out = []
    for path in study_zips(folder):
        try:
            dixel = study_dixel(path)
        except InvalidDicom:
            continue
        if all(dixel.tags.get(k) == v for k, v in wanted.items()):
            out.append(dixel)
    return out


def _oid(item: Any) -> str:
    return item.oid() if isinstance(item, Dixel) else str(item)


def get_study(folder: Any, item: Any, dest: Any = None) -> Dixel:
    path = zip_path(folder, _oid(item))
    if not os.path.isfile(path):
        raise NotFound(f"DcmDir {folder.name!r}: no study {_oid(item)}")
    dixel = study_dixel(path)
    if dest is not None:
        shutil.copyfile(path, os.fspath(dest))
        dixel.meta["FileName"] = os.fspath(dest)
    return dixel


def exists(folder: Any, item: Any) -> bool:
    return os.path.isfile(zip_path(folder, _oid(item)))


def delete(folder: Any, item: Any) -> bool:
    try:
        os.remove(zip_path(folder, _oid(item)))
    except FileNotFoundError:
        return False
    return True


def recover_partial_zips(folder: Any) -> int:
    """Remove the ``.<pid>-*.zip.part`` files of processes that are gone (a killed writer's half zips); returns the
    count. Only the folder itself is listed (study zips are written there first), never the whole tree."""
    removed = 0
    try:
        entries = list(os.scandir(folder.path))
    except FileNotFoundError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(".") and name.endswith(".part") and entry.is_file(follow_symlinks=False)):
            continue
        pid = name[1:].partition("-")[0]
        if pid.isdigit() and pid_alive(int(pid)):
            continue  # a live writer's file (this pid or another process writing into the same folder)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(entry.path)
            removed += 1
    return removed


    return True
