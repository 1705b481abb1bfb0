"""FileIndexer jobs cut into ``WorkUnit``s for an ``Executor``: index = batches of directories, upload = collections.

The coordinator only lists directories (or collection names); each worker lists, reads and registers the files of its
batch, or uploads one collection, with the registry and destination it builds from its own service file. Counters
come back in ``UnitResult.counters`` and add up to the same totals as an in-process run.
"""

from __future__ import annotations

import fnmatch
import os
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from diana_core.errors import ConfigError, DianaError
from diana_core.execution import Executor, UnitResult, WorkUnit
from diana_core.ports import Progress
from diana_core.usecases.indexer import RECURSE_STYLES, FileIndexer, IndexResult, UploadResult

DIRS_PER_UNIT = 8


def walk_dirs(basepath: str, recurse_style: str = "UNSTRUCTURED") -> Iterator[str]:
    """Folders under basepath (relative, "" = basepath itself) that may hold files, lazily; hidden ones skipped."""
    style = recurse_style.upper()
    if style not in RECURSE_STYLES:
        raise ConfigError(f"recurse_style must be one of {', '.join(RECURSE_STYLES)}, not {recurse_style!r}")
    if style == "ORTHANC":
        for top in sorted(os.listdir(basepath)):
            if len(top) == 2 and os.path.isdir(os.path.join(basepath, top)):
                for sub in sorted(os.listdir(os.path.join(basepath, top))):
                    if len(sub) == 2 and os.path.isdir(os.path.join(basepath, top, sub)):
                        yield f"{top}/{sub}"
        return
    stack = [""]
    while stack:
        rel = stack.pop()
        yield rel
        subdirs = []
        try:
            with os.scandir(os.path.join(basepath, rel)) as it:
                subdirs = [e.name for e in it if e.name[0] != "." and e.is_dir(follow_symlinks=False)]
        except PermissionError:
            continue
        stack.extend(os.path.join(rel, d) if rel else d for d in sorted(subdirs, reverse=True))


def files_in_dirs(basepath: str, dirs: list[str], rex: str | None) -> Iterator[str]:
    """The files directly inside each folder of ``dirs`` whose names match ``rex`` (not recursive)."""
    match_all = rex in (None, "", "*")
    for rel in dirs:
        try:
            with os.scandir(os.path.join(basepath, rel)) as it:
                names = sorted(e.name for e in it if e.name[0] != "." and e.is_file())
        except FileNotFoundError:
            continue
        for name in names:
            if match_all or fnmatch.fnmatch(name, rex or "*"):
                yield os.path.join(basepath, rel, name)


def registry_spec(registry: Any) -> str:
    """How a worker finds this registry: an embedded index by its .sqlite path, else the service name."""
    path = getattr(registry, "path", None)
    if isinstance(path, (str, os.PathLike)) and str(path).endswith((".sqlite", ".sqlite3", ".db")):
        return os.path.abspath(os.fspath(path))
    return str(getattr(registry, "name", ""))


def resolve_registry(spec: str, services: Mapping[str, Any]) -> Any:
    """The registry a unit names: a .sqlite path (embedded index) or a service of the worker's service file."""
    from diana_core.embedded import SqliteRegistry
    from diana_core.services import Services, resolve_endpoint

    if spec.endswith((".sqlite", ".sqlite3", ".db")):
        return SqliteRegistry(path=spec)
    return resolve_endpoint(spec, services if isinstance(services, Services) else Services(services))


# --- worker side ---------------------------------------------------------------------------------------------------
def run_index_unit(indexer: FileIndexer, unit: WorkUnit, registry: Any, worker: str = "local") -> UnitResult:
    """Index the files of one directory batch; bad files are counted and listed, never raised."""
    opts = unit.options
    base = str(opts["basepath"])
    try:
        res = indexer.index_path(base, registry, rex=opts.get("rex"), quarantine=opts.get("quarantine"),
                                 collection_key=str(opts.get("collection_key", "AccessionNumber")),
                                 files=files_in_dirs(base, list(unit.item["dirs"]), opts.get("rex")))
    except DianaError as exc:
        return UnitResult(unit.job, unit.kind, unit.key, "failed", error=f"{type(exc).__name__}: {exc}", worker=worker)
    counters = {"checked": res.checked, "registered": res.registered, "bad": res.bad_count,
                "quarantined": res.quarantined}
    return UnitResult(unit.job, unit.kind, unit.key, "done", count=res.registered, counters=counters,
                      failures=list(res.bad), worker=worker)


def run_upload_unit(indexer: FileIndexer, unit: WorkUnit, registry: Any, dest: Any,
                    worker: str = "local") -> UnitResult:
    """Upload one registered collection to dest; failed files are listed, never raised."""
    opts = unit.options
    try:
        res = indexer.upload_collection(str(unit.item["collection"]), str(opts["basepath"]), registry, dest,
                                        workers=int(opts.get("workers", 4)),
                                        check_exists=bool(opts.get("check_exists")))
    except DianaError as exc:
        return UnitResult(unit.job, unit.kind, unit.key, "failed", error=f"{type(exc).__name__}: {exc}", worker=worker)
    counters = {"done": res.done, "skipped": res.skipped, "failed": len(res.failed)}
    return UnitResult(unit.job, unit.kind, unit.key, "done", count=res.done, counters=counters,
                      failures=list(res.failed), worker=worker)


# --- coordinator side ----------------------------------------------------------------------------------------------
def index_with(indexer: FileIndexer, executor: Executor, base: str, registry: Any, rex: str | None,
               recurse_style: str, quarantine: Any, collection_key: str, progress: Progress | None,
               dirs_per_unit: int = DIRS_PER_UNIT) -> IndexResult:
    """Fan directory batches of ``base`` out to ``executor``; the totals of an in-process run."""
    import time

    start = time.perf_counter()
    job = f"index-{uuid.uuid4().hex[:12]}"
    options = {"basepath": base, "rex": rex, "collection_key": collection_key,
               "quarantine": os.fspath(quarantine) if quarantine else None}
    services = {"registry": registry_spec(registry)}
    batch: list[str] = []
    n = 0

    def submit() -> None:
        nonlocal n
        n += 1
        executor.submit(WorkUnit(job=job, kind="index", key=f"dirs-{n}", item={"dirs": list(batch)},
                                 services=services, options=options))
        batch.clear()

    for rel in walk_dirs(base, recurse_style):
        batch.append(rel)
        if len(batch) >= dirs_per_unit:
            submit()
    if batch:
        submit()
    result = IndexResult(basepath=base, prefix=indexer.prefix_for_path(base))
    for res in executor.results():
        if res.outcome == "failed":
            result.bad_count += 1
            result.bad.append((res.key, res.error or "failed"))
            continue
        result.checked += res.counters.get("checked", 0)
        result.registered += res.counters.get("registered", 0)
        result.bad_count += res.counters.get("bad", 0)
        result.quarantined += res.counters.get("quarantined", 0)
        room = indexer.max_report - len(result.bad)
        result.bad.extend(res.failures[:max(room, 0)])
        if progress is not None:
            progress(result.checked, None)
    result.elapsed = time.perf_counter() - start
    return result


def upload_with(indexer: FileIndexer, executor: Executor, base: str, registry: Any, dest: Any,
                names: list[str] | None = None, workers: int = 4, check_exists: bool = False, progress: Progress | None = None,
                **_: Any) -> UploadResult:
    """One unit per collection on ``executor``; counts add up as in an in-process upload."""
    import time

    start = time.perf_counter()
    job = f"upload-{uuid.uuid4().hex[:12]}"
    services = {"registry": registry_spec(registry), "dest": str(getattr(dest, "name", ""))}
    options = {"basepath": base, "workers": workers, "check_exists": check_exists}
    if names is None:
        names = list(registry.collections(indexer.prefix_for_path(base)))
    for n, name in enumerate(names, start=1):
        executor.submit(WorkUnit(job=job, kind="upload", key=f"collection-{n}", item={"collection": name},
                                 services=services, options=options))
    result = UploadResult()
    for res in executor.results():
        if res.outcome == "failed":
            result.failed.append((res.key, res.error or "failed"))
            continue
        result.done += res.counters.get("done", 0)
        result.skipped += res.counters.get("skipped", 0)
        result.failed.extend(res.failures)
        if progress is not None:
            progress(result.total, None)
    result.elapsed = time.perf_counter() - start
    return result
