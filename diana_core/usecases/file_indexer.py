"""The original's ``diana.daemons.file_indexer`` module: ``FileIndexer`` plus its module-level ``index_file`` and
``put_inst`` (one file each), for scripts that called them directly. Folders go through ``FileIndexer``.

The counters (the original's multiprocessing ``Value`` arguments) are optional: anything with a ``value``.
"""

from __future__ import annotations

import os
from typing import Any

from diana_core.dicom import DicomLevel
from diana_core.errors import ConfigError, InvalidDicom
from diana_core.usecases.indexer import FileIndexer, IndexResult, _read_one, default_reader

__all__ = ["FileIndexer", "index_file", "put_inst"]


def _bump(counter: Any) -> None:
    if counter is None:
        return
    lock = getattr(counter, "get_lock", None)
    if lock is None:
        counter.value += 1
        return
    with lock():
        counter.value += 1


def index_file(fn: str | os.PathLike[str], path: str | os.PathLike[str] | None = None, reg: Any = None,
               prefix: str | None = None, _checked: Any = None, _registered: Any = None) -> IndexResult:
    """Register one file in ``reg`` under ``prefix`` + its AccessionNumber (member: its path relative to ``path``,
    default its folder; prefix default: the one ``FileIndexer.prefix_for_path(path)`` gives). InvalidDicom names
    the file when it cannot be registered."""
    if reg is None:
        raise ConfigError("index_file needs a registry (reg=)")
    name = os.fspath(fn)
    base = os.fspath(path) if path is not None else os.path.dirname(os.path.abspath(name))
    full = name if os.path.isabs(name) else os.path.join(base, name)
    result = FileIndexer().index_path(base, reg, rex=None, files=[full], prefix=prefix)
    _bump(_checked)
    if result.bad_count:
        rel, why = result.bad[0]
        raise InvalidDicom(f"index_file: {rel}: {why}")
    _bump(_registered)
    return result


def put_inst(fn: str | os.PathLike[str], dest: Any, _uploaded: Any = None) -> Any:
    """Put one DICOM file into ``dest`` (its ``put`` answer, e.g. the Orthanc instance id)."""
    name = os.path.abspath(os.fspath(fn))
    dixel, error = _read_one(default_reader(os.path.dirname(name)), name)
    if dixel is None:
        raise InvalidDicom(f"put_inst: {os.path.basename(name)}: {error}")
    try:
        with open(name, "rb") as fh:
            dixel.file = fh.read()
    except OSError as exc:
        raise InvalidDicom(f"put_inst: {os.path.basename(name)}: {exc.strerror}") from None
    dixel.level = DicomLevel.INSTANCES
    answer = dest.put(dixel)
    _bump(_uploaded)
    return answer
