"""WADO-RS answers written where the caller wants them: a zip (path or binary file object) or a folder, one
instance at a time, so a whole study never sits in memory.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

Target = str | os.PathLike[str] | IO[bytes]


def is_folder_target(dest: Target) -> bool:
    """A path that is an existing folder, or that ends with a separator or has no suffix, is a folder target."""
    if not isinstance(dest, (str, os.PathLike)):
        return False
    text = os.fspath(dest)
    path = Path(text)
    return path.is_dir() or text.endswith(("/", os.sep)) or (not path.suffix and not path.exists())


def write_parts(parts: Iterable[bytes], dest: Target, prefix: str = "IM") -> int:
    """Write each instance to ``dest`` (a zip, or a folder of ``IM000001.dcm``...); returns the count written.

    A zip is written to a temporary name and renamed when complete, so a failed retrieval never leaves a
    truncated archive that looks whole.
    """
    count = 0
    if is_folder_target(dest):
        folder = Path(os.fspath(dest))  # type: ignore[arg-type]
        folder.mkdir(parents=True, exist_ok=True)
        for count, data in enumerate(parts, start=1):
            (folder / f"{prefix}{count:06d}.dcm").write_bytes(data)
        return count
    if isinstance(dest, (str, os.PathLike)):
        final = Path(os.fspath(dest))
        final.parent.mkdir(parents=True, exist_ok=True)
        partial = final.with_name(final.name + ".partial")
        try:
            with open(partial, "wb") as fh:
                count = _write_zip(parts, fh, prefix)
            os.replace(partial, final)
        finally:
            partial.unlink(missing_ok=True)
        return count
    return _write_zip(parts, dest, prefix)


def _write_zip(parts: Iterable[bytes], fh: IO[bytes] | Any, prefix: str) -> int:
    count = 0
    # DICOM pixel data hardly compresses with deflate and costs CPU: store the members as they are
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for count, data in enumerate(parts, start=1):
            archive.writestr(f"{prefix}{count:06d}.dcm", data)
    return count
