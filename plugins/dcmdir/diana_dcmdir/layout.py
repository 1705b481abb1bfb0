"""Where files live in a DcmDir: the width/depth subpath scheme and lazy directory walks.

A file named ``fn`` is stored at ``path/fn[0:w]/fn[w:2w]/.../fn`` (``depth`` levels of ``width`` characters).
Walks are generators over ``os.scandir`` so a folder of millions of files is never held as one list.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from diana_core.dicom import orthanc_id
from diana_core.errors import InvalidDicom, ValidationError

ORTHANC_DIRS = 65536


def subpath(fn: str, width: int = 2, depth: int = 0) -> str:
    """Relative path of ``fn`` in the layout: ``fn[0:w]/fn[w:2w]/.../fn`` for ``depth`` levels."""
    if width < 1 or depth < 0:
        raise ValidationError(f"subpath_width must be >= 1 and subpath_depth >= 0, not {width}/{depth}")
    base = os.path.basename(fn)
    if not base or base in {".", ".."}:
        raise ValidationError(f"not a usable file name: {fn!r}")
    parts = [base[i * width:(i + 1) * width] for i in range(depth)]
    if any(len(p) < width for p in parts):
        raise ValidationError(f"file name {base!r} is too short for depth {depth} x width {width}")
    return os.path.join(*parts, base)


def orthanc_subdirs(base_dir: str = ".", low: int = 0, high: int = ORTHANC_DIRS - 1) -> Iterator[str]:
    """Lazily yield Orthanc storage dirs ``base/00/00`` .. ``base/ff/ff`` numbered ``low``..``high`` inclusive."""
    if not 0 <= low <= high < ORTHANC_DIRS:
        raise ValidationError(f"orthanc_subdirs needs 0 <= low <= high <= {ORTHANC_DIRS - 1}, not {low}..{high}")
    for n in range(low, high + 1):
        yield os.path.join(base_dir, f"{n >> 8:02x}", f"{n & 0xFF:02x}")


def unstructured_subdirs(base_dir: str = ".") -> Iterator[str]:
    """Lazily yield ``base_dir`` and every directory below it (depth first, os.scandir, symlinks not followed)."""
    stack = [base_dir]
    while stack:
        current = stack.pop()
        yield current
        try:
            with os.scandir(current) as entries:
                subdirs = [e.path for e in entries if e.is_dir(follow_symlinks=False)]
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        stack.extend(sorted(subdirs, reverse=True))


def files_in(directory: str) -> Iterator[str]:
    """Regular files directly inside ``directory`` (hidden temp files of in-progress writes skipped)."""
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if not entry.name.startswith(".") and entry.is_file(follow_symlinks=False):
                    yield entry.path
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return


def walk_files(base_dir: str = ".", recurse_style: str = "UNSTRUCTURED") -> Iterator[str]:
    """Every file under ``base_dir``: all subdirs ("UNSTRUCTURED") or only Orthanc's 00/00..ff/ff ("ORTHANC")."""
    style = recurse_style.upper()
    dirs: Iterator[str]
    if style == "ORTHANC":
        tops = (n for n in range(256) if os.path.isdir(os.path.join(base_dir, f"{n:02x}")))
        dirs = (d for n in tops for d in orthanc_subdirs(base_dir, n << 8, (n << 8) | 0xFF) if os.path.isdir(d))
    elif style == "UNSTRUCTURED":
        dirs = unstructured_subdirs(base_dir)
    else:
        raise ValidationError(f"recurse_style must be 'UNSTRUCTURED' or 'ORTHANC', not {recurse_style!r}")
    for d in dirs:
        yield from files_in(d)


def instance_file_name(ds: Any, suffix: str = ".dcm") -> str:
    """A file name without PHI: the Orthanc instance id of the dataset (or tag mapping) plus ``suffix``."""
    keys = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
    values = [ds.get(k) for k in keys]
    if any(v in (None, "") for v in values):
        raise InvalidDicom("dataset lacks PatientID or a UID: cannot name its file")
    return orthanc_id(*(str(v) for v in values)) + suffix
