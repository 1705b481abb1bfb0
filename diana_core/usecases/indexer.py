"""FileIndexer: register the DICOM files of a folder in a Registry, then bulk-upload collections from it.

The walk is lazy (``os.scandir``; UNSTRUCTURED tree or ORTHANC storage layout base/xx/yy), headers are read by a
reader that the DcmDir plugin provides (the core parses no DICOM), reads may run in a thread pool, and registration
is batched (``registry.add_many``) from one thread, so counters stay exact under parallelism. A bad file is
reported (and optionally moved to a quarantine folder); the run goes on.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from attrs import define, field

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel
from diana_core.errors import ConfigError, DianaError, ValidationError
from diana_core.ports import (
    BulkPutter,
    BulkRegistry,
    BulkResult,
    CountingRegistry,
    FileUploader,
    HeaderReader,
    MemberRegistry,
    Progress,
)
from diana_core.services import build_endpoint

logger = logging.getLogger(__name__)

Reader = Callable[[str], Any]
"""Header-only reader: file path -> Dixel, or a dataset-like object whose attributes are DICOM keywords (e.g. a
pydicom Dataset read with stop_before_pixels); raises InvalidDicom (or another DianaError) for bad files."""

INDEX_TAGS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "AccessionNumber",
              "Modality", "SeriesNumber", "InstanceNumber")

RECURSE_STYLES = ("UNSTRUCTURED", "ORTHANC")
_HEX = set("0123456789abcdef")


@define
class IndexResult:
    """Outcome of ``index_path``: files checked, registered, bad (count + first ``max_report`` with the reason)."""

    basepath: str
    prefix: str
    checked: int = 0
    registered: int = 0
    bad_count: int = 0
    bad: list[tuple[str, str]] = field(factory=list)
    quarantined: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.bad_count == 0

    @property
    def rate(self) -> float:
        """Files checked per second."""
        return self.checked / self.elapsed if self.elapsed > 0 else 0.0


@define
class UploadResult:
    """Outcome of an upload: instances stored, skipped (already there), failed (file, reason), seconds; ``resumed``:
    of the skipped, files an earlier run had marked as uploaded, not read again."""

    done: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(factory=list)
    elapsed: float = 0.0
    resumed: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def total(self) -> int:
        return self.done + self.skipped + len(self.failed)


def walk_files(basepath: str | os.PathLike[str], rex: str | None = "*.dcm",
               recurse_style: str = "UNSTRUCTURED") -> Iterator[str]:
    """Paths of the files under basepath whose name matches ``rex`` (None or "*": all), lazily; hidden names
    (".x") are skipped. ORTHANC style only visits base/xx/yy (two hex digits each)."""
    style = recurse_style.upper()
    if style not in RECURSE_STYLES:
        raise ConfigError(f"recurse_style must be one of {', '.join(RECURSE_STYLES)}, not {recurse_style!r}")
    base = os.fspath(basepath)
    match_all = rex in (None, "", "*")
    pattern = rex or "*"

    def files_in(folder: str) -> Iterator[str]:
        with os.scandir(folder) as it:
            for entry in it:
                if entry.name[0] != "." and entry.is_file() and (match_all or fnmatch.fnmatch(entry.name, pattern)):
                    yield entry.path

    def hex_dirs(folder: str) -> list[str]:
        with os.scandir(folder) as it:
            return sorted(e.path for e in it if len(e.name) == 2 and set(e.name) <= _HEX and e.is_dir())

    if style == "ORTHANC":
        for top in hex_dirs(base):
            for sub in hex_dirs(top):
                yield from files_in(sub)
        return
    stack = [base]
    while stack:
        folder = stack.pop()
        subdirs = []
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.name[0] == ".":
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        subdirs.append(entry.path)
                    elif entry.is_file() and (match_all or fnmatch.fnmatch(entry.name, pattern)):
                        yield entry.path
        except PermissionError:
            logger.warning("cannot list a folder under %s (permission denied)", base)
        stack.extend(sorted(subdirs, reverse=True))


def default_reader(basepath: str | os.PathLike[str]) -> Reader:
    """The DcmDir plugin's header-only reader for files under basepath (ConfigError if DcmDir is not installed)."""
    dcmdir = build_endpoint("DcmDir", {"path": os.fspath(basepath)}, service_name="indexer")
    if not isinstance(dcmdir, HeaderReader):
        raise ConfigError(f"indexer: {type(dcmdir).__name__} cannot read file headers (no HeaderReader port)")
    return dcmdir.read_header


def header_dixel(header: Any, path: str) -> Dixel:
    """A light instance Dixel from a dataset-like header (attributes by DICOM keyword): only the identifiers the
    registry and uploads need, so indexing does not convert every element. AccessionNumber falls back to the
    StudyInstanceUID, as ``dicom_simplify`` does."""
    tags = {}
    raw_item = getattr(header, "get_item", None)
    for key in INDEX_TAGS:
        if raw_item is not None:  # pydicom-style raw element: skip value conversion/validation (~1/3 of the time)
            try:
                elem = raw_item(key)
            except (KeyError, ValueError, TypeError):
                elem = None
            value = getattr(elem, "value", None)
            if isinstance(value, (bytes, bytearray)):
                value = bytes(value).decode("utf-8", "replace").strip("\x00 ")
        else:
            value = getattr(header, key, None)
        if value is not None:
            tags[key] = str(value)  # empty kept: Orthanc ids hash an empty PatientID too
    if not tags.get("AccessionNumber") and tags.get("StudyInstanceUID"):
        tags["AccessionNumber"] = tags["StudyInstanceUID"]
    return Dixel(meta={"FileName": path}, tags=tags, level=DicomLevel.INSTANCES)


def _read_one(reader: Reader, path: str) -> tuple[Dixel | None, str | None]:
    try:
        header = reader(path)
        return (header if isinstance(header, Dixel) else header_dixel(header, path)), None
    except DianaError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - a reader crash on one odd file is that file's problem, not the run's
        return None, f"{type(exc).__name__}: {exc}"


@define
class FileIndexer:
    """Index folders of DICOM files into a Registry and upload registered collections. ``pool_size`` > 0 reads
    headers in that many threads."""

    pool_size: int = 0
    batch_size: int = 500
    max_report: int = 1000

    @staticmethod
    def prefix_for_path(basepath: str | os.PathLike[str]) -> str:
        """Registry prefix of a base folder: md5(path as given)[:4] + "-" (the original DIANA layout)."""
        return hashlib.md5(os.fspath(basepath).encode("utf-8")).hexdigest()[:4] + "-"

    # --- index ------------------------------------------------------------------------------------------------------
    def _reads(self, paths: Iterable[str], reader: Reader) -> Iterator[tuple[str, Dixel | None, str | None]]:
        if self.pool_size <= 0:
            for path in paths:
                yield (path, *_read_one(reader, path))
            return
        window: deque[tuple[str, Future[tuple[Dixel | None, str | None]]]] = deque()
        limit = self.pool_size * 8  # bounded: never more than this many reads in flight or done-but-unconsumed
        with ThreadPoolExecutor(self.pool_size, thread_name_prefix="diana-index") as pool:
            for path in paths:
                window.append((path, pool.submit(_read_one, reader, path)))
                if len(window) >= limit:
                    done_path, fut = window.popleft()
                    yield (done_path, *fut.result())
            while window:
                done_path, fut = window.popleft()
                yield (done_path, *fut.result())

    def index_path(self, basepath: str | os.PathLike[str], registry: Any, rex: str | None = "*.dcm",
                   recurse_style: str = "UNSTRUCTURED", reader: Reader | None = None,
                   quarantine: str | os.PathLike[str] | None = None, collection_key: str = "AccessionNumber",
                   progress: Progress | None = None, files: Iterable[str] | None = None,
                   prefix: str | None = None) -> IndexResult:
        """Register every matching file under basepath in ``registry`` (collection = prefix + collection_key tag,
        member = path relative to basepath). Bad files are counted, listed and optionally moved to ``quarantine``.
        ``files`` indexes just those paths (no walk); ``index_units.index_with`` fans batches out to an executor.
        ``prefix`` replaces the one derived from basepath."""
        base = os.fspath(basepath)
        if not os.path.isdir(base):
            raise ConfigError(f"indexer: {base!r} is not a folder")
        prefix = prefix if prefix is not None else self.prefix_for_path(base)
        result = IndexResult(basepath=base, prefix=prefix)
        reader = reader or default_reader(base)
        # (collection, path) pairs when the registry takes them (MemberRegistry: no Dixel read per entry), else
        # Dixel entries in bulk (BulkRegistry), else one by one
        members = registry if isinstance(registry, MemberRegistry) else None
        add_many = registry.add_many if isinstance(registry, BulkRegistry) else None
        batch: list[tuple[Dixel, str, str, str, str | None]] = []
        pairs: list[tuple[str, str]] = []
        start = time.perf_counter()
        cut = len(base.rstrip(os.sep)) + 1

        def flush() -> None:
            if pairs:
                assert members is not None
                members.add_members(pairs, prefix)
                result.registered += len(pairs)
                pairs.clear()
            if not batch:
                return
            if add_many is not None:
                add_many(batch)
            else:
                for entry in batch:
                    registry.add_to_collection(*entry)
            result.registered += len(batch)
            batch.clear()

        paths = walk_files(base, rex, recurse_style) if files is None else files
        for path, dixel, error in self._reads(paths, reader):
            result.checked += 1
            rel = path[cut:]
            if dixel is not None and dixel.tag(collection_key) in (None, ""):
                dixel, error = None, f"no {collection_key}"
            if dixel is None:
                self._bad(result, base, rel, error or "unreadable", quarantine)
            else:
                if members is not None:
                    pairs.append((str(dixel.tag(collection_key)), rel))
                else:
                    dixel.meta["FilePath"] = rel
                    batch.append((dixel, prefix, collection_key, "FilePath", None))
                if len(batch) + len(pairs) >= self.batch_size:
                    flush()
            if progress is not None and result.checked % 100 == 0:
                progress(result.checked, None)
        flush()
        result.elapsed = time.perf_counter() - start
        if progress is not None:
            progress(result.checked, result.checked)
        logger.info("indexed %d files (%d registered, %d bad) in %.1f s", result.checked, result.registered,
                    result.bad_count, result.elapsed)
        return result

    def _bad(self, result: IndexResult, base: str, rel: str, reason: str,
             quarantine: str | os.PathLike[str] | None) -> None:
        result.bad_count += 1
        if len(result.bad) < self.max_report:
            result.bad.append((rel, reason))
        logger.debug("bad file %s: %s", rel, reason)
        if quarantine is not None:
            target = os.path.join(os.fspath(quarantine), rel)
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.move(os.path.join(base, rel), target)
                result.quarantined += 1
            except OSError as exc:
                logger.warning("could not quarantine a bad file: %s", exc.strerror)

    def create_pool(self) -> FileIndexer:
        """Optional (the original's scripts call it): each run makes its own bounded pool of ``pool_size``
        threads and closes it at the end, so there is nothing to set up; returns the indexer."""
        return self

    @classmethod
    def items_on_path(cls, basepath: str | os.PathLike[str], registry: Any) -> list[str]:
        """The collection names registered for basepath (``registry.collections(prefix)``, as the original)."""
        return list(registry.collections(cls.prefix_for_path(basepath)))

    @classmethod
    def files_on_path(cls, basepath: str | os.PathLike[str], registry: Any) -> int:
        """Number of files registered for basepath (all collections under its prefix)."""
        prefix = cls.prefix_for_path(basepath)
        if isinstance(registry, CountingRegistry):
            return int(registry.total(prefix))
        return sum(len(list(registry.collected_items(c, prefix))) for c in registry.collections(prefix))

    # --- upload ----------------------------------------------------------------------------------------------------
    def upload_collection(self, collection: str, basepath: str | os.PathLike[str], registry: Any, dest: Any,
                          **kwargs: Any) -> UploadResult:
        """Upload the files of one registered collection to ``dest`` (see ``upload_files`` for options)."""
        members = list(registry.collected_items(collection, self.prefix_for_path(basepath)))
        return self.upload_files(members, basepath, dest, total=len(members), **kwargs)

    def upload_path(self, basepath: str | os.PathLike[str], registry: Any, dest: Any,
                    collections: Iterable[str] | None = None, resume: str | None = None, restart: bool = False,
                    **kwargs: Any) -> UploadResult:
        """Upload every registered collection of basepath (or the named ones) to ``dest`` in one bounded stream.
        ``resume`` (a name for this destination) marks finished collections in the registry and skips those an
        earlier run marked, unread (``upload_resume``); ``restart`` ignores the marks."""
        prefix = self.prefix_for_path(basepath)
        names = list(collections) if collections is not None else list(registry.collections(prefix))
        if resume:
            from diana_core.usecases.upload_resume import upload_resumable

            total = self.files_on_path(basepath, registry) if collections is None else None
            result: UploadResult = upload_resumable(self, basepath, registry, dest, resume, names, UploadResult(),
                                                    restart=restart, total=total, **kwargs)
            return result

        def members() -> Iterator[str]:
            for name in names:
                yield from registry.collected_items(name, prefix)

        total = self.files_on_path(basepath, registry) if collections is None else None
        return self.upload_files(members(), basepath, dest, total=total, **kwargs)

    def upload_files(self, members: Iterable[str], basepath: str | os.PathLike[str], dest: Any, workers: int = 4,
                     progress: Progress | None = None, check_exists: bool = False, reader: Reader | None = None,
                     total: int | None = None) -> UploadResult:
        """Put files (paths relative to basepath) into dest via ``dest.put_many`` with ``workers`` in flight.
        Instances already there are skipped: by ``dest.exists`` on the instance id first when ``check_exists``,
        else by the backend reporting them (e.g. Orthanc's AlreadyStored)."""
        base = os.fspath(basepath)
        start = time.perf_counter()
        if isinstance(dest, FileUploader) and not check_exists:
            # the fast path: the feeding thread only names files; dest's workers read and judge them
            paths = (m if os.path.isabs(m) else os.path.join(base, m) for m in members)
            sent = dest.put_files(paths, workers=workers,
                                  progress=(lambda done, _t: progress(done, total)) if progress else None)
            failed = [(os.path.relpath(name, base) if name.startswith(base) else name, why)
                      for name, why in sent.failed]
            result = UploadResult(done=sent.done, skipped=sent.skipped, failed=failed,
                                  elapsed=time.perf_counter() - start)
            logger.info("uploaded %d, skipped %d, failed %d in %.1f s", result.done, result.skipped,
                        len(result.failed), result.elapsed)
            return result
        reader = reader or default_reader(base)
        pre = UploadResult()

        def report(done: int, _total: int | None) -> None:
            if progress is not None:
                progress(done + pre.skipped + len(pre.failed), total)

        def items() -> Iterator[Dixel]:
            for member in members:
                path = member if os.path.isabs(member) else os.path.join(base, member)
                dixel, error = _read_one(reader, path)
                if dixel is None:
                    pre.failed.append((member, error or "unreadable"))
                    continue
                try:
                    if check_exists and dest.exists(dixel.oid(), level=DicomLevel.INSTANCES):
                        pre.skipped += 1
                        report(0, total)
                        continue
                    with open(path, "rb") as fh:
                        dixel.file = fh.read()
                except (OSError, ValidationError) as exc:
                    pre.failed.append((member, getattr(exc, "strerror", None) or str(exc)))
                    continue
                dixel.level = DicomLevel.INSTANCES
                dixel.meta.setdefault("FileName", member)
                yield dixel

        if not isinstance(dest, BulkPutter):
            raise ConfigError(f"{getattr(dest, 'name', dest)!r} cannot take uploads (no put/put_many)")
        bulk: BulkResult = dest.put_many(items(), workers=workers, progress=report)
        result = UploadResult(done=bulk.done, skipped=bulk.skipped + pre.skipped,
                              failed=pre.failed + list(bulk.failed), elapsed=time.perf_counter() - start)
        logger.info("uploaded %d, skipped %d, failed %d in %.1f s", result.done, result.skipped, len(result.failed),
                    result.elapsed)
        return result
