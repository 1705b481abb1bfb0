"""DcmDir: a folder of DICOM files as a Diana endpoint (put/get/exists/delete/update, lazy listing, zips).

Files are named by their Orthanc instance id (no PHI) and placed with the width/depth layout; ``anonymizing``
pseudonymizes each file locally on the way in (the one de-identification engine, ``anonymize.py``, with the
service's ``profile``); ``put_pseudonymized`` (the ``Pseudonymizing`` port) does it with the caller's plan. Bulk
reads (``index``) are header-only generators that report unreadable files instead of stopping. Beside it: zips in
and out (``folder_zips``), query matching (``file_query``), failed writes as typed errors (``write_errors``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from attrs import define, field, validators

from diana_core import BulkResult, Dixel, DixelView, Endpoint
from diana_core.archives import ZipLimits
from diana_core.delivery import DEFAULT_MAX_INSTANCE_BYTES, refuse_unless_plausible
from diana_core.dicom import DicomLevel
from diana_core.errors import (
    DianaError,
    InvalidDicom,
    JobError,
    NotFound,
    NotSupportedError,
    ValidationError,
)
from diana_core.ports import is_query, refuse_unknown, secret_field
from diana_core.pseudonym import Pseudonymizer, load_key
from diana_dcmdir import folder_zips, layout, reading
from diana_dcmdir.file_query import matches, selected
from diana_dcmdir.handlers import atomic_write
from diana_dcmdir.report import ReadReport
from diana_dcmdir.studies import INDEX_KEYS, StudyIndex, get_indexed_study, study_entry
from diana_dcmdir.tags import dataset_tags
from diana_dcmdir.write_errors import unwritable

logger = logging.getLogger(__name__)


@define(kw_only=True)
class DcmDir(Endpoint):
    """A DICOM folder. ``recurse_style`` "UNSTRUCTURED" walks every subfolder, "ORTHANC" only 00/00..ff/ff.

    Fields:
        path: The folder (created on first put).
        subpath_width: Characters of the file name per subfolder level (with subpath_depth).
        subpath_depth: Subfolder levels derived from the file name (0 = flat folder).
        anonymizing: Pseudonymize every instance put here with the project key and profile (the originals never
            land).
        recurse_style: UNSTRUCTURED walks every subfolder; ORTHANC reads only Orthanc's 00/00..ff/ff storage layout.
        quarantine: Folder for instances held back (may show burned-in identifiers); default: not kept.
        pseudonym_key: Pseudonym key (a secret); default: $DIANA_PSEUDONYM_KEY, else the key file of `diana key
            new`.
        uid_scheme: keyed (collision-free 2.25 UIDs) or diana (the original's hierarchical scheme, for continuity).
    """

    name: str = "DcmDir"
    path: str = "."
    subpath_width: int = 2
    subpath_depth: int = 0
    anonymizing: bool = False
    recurse_style: str = "UNSTRUCTURED"
    quarantine: str | None = None
    study_zips: bool = False  # keep each study as one zip named by its Orthanc study id
    zip_compression: str = field(default="deflated", validator=validators.in_(("deflated", "stored")))  # study zips
    zip_limits: ZipLimits = field(factory=ZipLimits)  # caps for archives put here (zip bombs are refused)
    pseudonym_key: str | None = secret_field()
    uid_scheme: str = "keyed"
    profile: str | None = None  # de-identification profile: "basic,retain-uids,..." or a YAML override file
    unkeyed: bool = False  # pseudonymize without a key (anyone can recompute the pseudonyms)
    naming: str = "oid"  # file names: "oid" (Orthanc instance id, no PHI) or "original" (the item's own file name)
    max_instance_bytes: int = DEFAULT_MAX_INSTANCE_BYTES  # larger files are refused before they are read
    last_report: ReadReport | None = field(init=False, default=None, repr=False)
    _pseudonymizer: Pseudonymizer | None = field(init=False, default=None, repr=False)
    _studies: StudyIndex | None = field(init=False, default=None, repr=False, eq=False)
    # held while the index is built and while a put records its file: a file written mid-scan is never lost
    _index_lock: Any = field(init=False, factory=threading.Lock, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.recurse_style.upper() not in {"UNSTRUCTURED", "ORTHANC"}:
            raise ValidationError(f"DcmDir {self.name!r}: recurse_style must be UNSTRUCTURED or ORTHANC")
        self.recurse_style = self.recurse_style.upper()
        if self.naming not in {"oid", "original"}:
            raise ValidationError(f"DcmDir {self.name!r}: naming must be 'oid' or 'original', not {self.naming!r}")
        if self.naming == "original" and self.anonymizing:
            raise ValidationError(f"DcmDir {self.name!r}: an anonymizing folder names files by oid (original file "
                                  "names can carry PHI); drop naming: original")

    # --- naming ---------------------------------------------------------------------------------------
    @property
    def pseudonymizer(self) -> Pseudonymizer:
        """This folder's own plan: key from the service file, $DIANA_PSEUDONYM_KEY or the key file; its profile."""
        if self._pseudonymizer is None:
            self._pseudonymizer = Pseudonymizer(key=self.pseudonym_key or load_key(), uid_scheme=self.uid_scheme,
                                                unkeyed=self.unkeyed, profile=self.profile)
        return self._pseudonymizer

    @property
    def pseudonymizes_on_write(self) -> bool:
        """Pseudonymizing port: every put is pseudonymized (``anonymizing: true``)."""
        return self.anonymizing

    def put_pseudonymized(self, item: Dixel, pseudonymizer: Pseudonymizer | None = None, **kwargs: Any) -> Any:
        """Pseudonymizing port: store ``item`` (an instance or a zip) pseudonymized with ``pseudonymizer`` (its
        key, profile and report; this folder's own plan when None). Instances that may show burned-in PHI are
        quarantined: a lone instance raises ``Quarantined``, an archive's are skipped; both are in the report."""
        return self.put(item, pseudonymizer=pseudonymizer or self.pseudonymizer, **kwargs)

    def fullpath(self, fn: str | os.PathLike[str]) -> str:
        """Path of a file name in this folder: bare names get the width/depth layout, paths are kept."""
        fn = os.fspath(fn)
        if os.path.isabs(fn):
            return fn
        if os.path.dirname(fn):
            return os.path.join(self.path, fn)
        return os.path.join(self.path, layout.subpath(fn, self.subpath_width, self.subpath_depth))

    def _candidates(self, item: Any) -> list[str]:
        if not isinstance(item, Dixel):
            return [self.fullpath(item)]
        out = []
        with contextlib.suppress(DianaError):
            out.append(self.fullpath(layout.instance_file_name(item.tags)))
        if item.fn:
            out.append(self.fullpath(item.fn))
        if not out:
            raise ValidationError(f"DcmDir {self.name!r}: item {item.summary()['id']} has no file name or UIDs")
        return out

    def _locate(self, item: Any) -> str:
        candidates = self._candidates(item)
        for path in candidates:
            if os.path.isfile(path):
                return path
        raise NotFound(f"DcmDir {self.name!r}: no file {os.path.basename(candidates[0])!r}")

    # --- port -----------------------------------------------------------------------------------------
    def check(self) -> bool:
        """True when the folder exists and is writable."""
        return os.path.isdir(self.path) and os.access(self.path, os.W_OK)

    def diagnose(self) -> tuple[bool, str]:
        """(available, why not): the folder is missing, a file, unreadable or not writable."""
        if not os.path.exists(self.path):
            return False, f"folder {self.path!r} does not exist"
        if not os.path.isdir(self.path):
            return False, f"{self.path!r} is a file, not a folder"
        if not os.access(self.path, os.R_OK | os.X_OK):
            return False, f"folder {self.path!r} is not readable by this user"
        if not os.access(self.path, os.W_OK):
            return False, f"folder {self.path!r} is not writable by this user (read-only share?)"
        return True, ""

    def studies(self) -> StudyIndex:
        """The study-level index of the folder (one header scan on first use, then kept current by put/delete)."""
        with self._index_lock:
            if self._studies is None:
                self._studies = StudyIndex.build(self.index(keys=INDEX_KEYS))
            return self._studies

    def put(self, item: Dixel, fn: str | None = None, pseudonymizer: Pseudonymizer | None = None,
            **kwargs: Any) -> Any:
        """Write ``item.file`` (DICOM bytes), pseudonymized with ``pseudonymizer`` when given, else with this
        folder's plan when ``anonymizing``; returns the stored file name (the Orthanc instance id of what was
        written, unless ``fn`` is given).

        A study/series Dixel whose ``file`` or FileName is a zip is unpacked member by member (``put_zip``);
        that returns a BulkResult and raises JobError if any member could not be stored.
        """
        refuse_unknown(f"DcmDir {self.name!r}", "put", kwargs)
        plan = pseudonymizer if pseudonymizer is not None else (self.pseudonymizer if self.anonymizing else None)
        if item.level < DicomLevel.INSTANCES and (item.file is not None or item.fn):
            source: Any = item.file if item.file is not None else item.fn
            is_zip = source[:4] == b"PK\x03\x04" if isinstance(source, bytes) else zipfile.is_zipfile(source)
            if is_zip:
                if self.study_zips:
                    from diana_dcmdir import studyzips

                    return studyzips.put_study_zip(self, source, plan)
                result = self.put_zip(source, plan)
                if result.failed:
                    raise JobError(f"DcmDir {self.name!r}: {len(result.failed)} files of the archive were not "
                                   f"stored (first: {result.failed[0][1]})")
                return result
        if item.file is None and item.fn and os.path.isfile(item.fn):
            refuse_unless_plausible(item.fn, self.max_instance_bytes)
            with open(item.fn, "rb") as fh:
                item = Dixel(meta=dict(item.meta), tags=item.tags, level=item.level, file=fh.read())
        if item.file is None:
            raise ValidationError(f"DcmDir {self.name!r}: item {item.summary()['id']} has no file bytes to put")
        label = fn or (os.path.basename(item.fn) if item.fn else item.summary()["id"])
        if plan is not None:
            from diana_dcmdir.rawpath import anonymize_bytes

            data, ds = anonymize_bytes(item.file, plan, name=label)
        else:
            data = item.file
            ds = reading.read_bytes(data, label, header_only=True)
        if fn is None and self.naming == "original" and item.fn:
            fn = os.path.basename(item.fn)
        fn = layout.instance_file_name(ds) if fn is None else fn
        try:
            atomic_write(self.fullpath(fn), data)  # a failed write leaves no temp file (durable_write)
        except OSError as exc:  # a read-only folder, a full disk: one line naming the folder and the file
            raise self._unwritable("write", fn, exc) from None
        with self._index_lock:
            if self._studies is not None:
                self._studies.add({k: ds.get(k) for k in INDEX_KEYS}, self.fullpath(fn))
        logger.debug("%s stored %s", self.name, fn)
        return fn

    def _unwritable(self, what: str, fn: str, exc: OSError) -> DianaError:
        """A failed write as one typed line naming the folder and the file (``write_errors``)."""
        return unwritable(self.name, self.path, what, fn, exc)

    def get(self, item: Any, view: DixelView | int | str = DixelView.TAGS, level: Any = None, **kwargs: Any) -> Dixel:
        """Read a file: TAGS = header only, FILE = bytes, PIXELS = rescaled float array; views combine.

        At study level (``level="studies"``) the item is a study Orthanc id or Dixel: TAGS gives its study tags,
        FILE writes the study as one zip to ``dest`` (a path) and returns a Dixel naming it.
        """
        refuse_unknown(f"DcmDir {self.name!r}", "get", kwargs)
        view = DixelView.from_label(view)
        if level is not None and DicomLevel.from_label(level) == DicomLevel.STUDIES:
            if self.study_zips:
                from diana_dcmdir import studyzips

                return studyzips.get_study(self, item, kwargs.get("dest") if DixelView.FILE in view else None)
            return get_indexed_study(self, item, view, kwargs.get("dest"))
        path = self._locate(item)
        if DixelView.FILE in view or DixelView.PIXELS in view:
            data, ds = reading.read_file(path, self.max_instance_bytes)
            dixel = Dixel.from_pydicom(ds, fn=path, file=data if DixelView.FILE in view else None,
                                       convert=dataset_tags)
            if DixelView.PIXELS in view:
                dixel.pixels = reading.rescaled_pixels(ds, path)
            return dixel
        return Dixel.from_pydicom(reading.read_header(path), fn=path, convert=dataset_tags)

    def exists(self, item: Any, level: Any = None, **kwargs: Any) -> bool:
        """True if the item's file is in the folder (at study level: any file of that study); a query mapping asks
        ``find``; a name that cannot be in this layout (too short for its depth) is simply absent."""
        refuse_unknown(f"DcmDir {self.name!r}", "exists", kwargs)
        if is_query(item):
            return self.exists_query(item, level=level)
        if level is not None and DicomLevel.from_label(level) == DicomLevel.STUDIES:
            if self.study_zips:
                from diana_dcmdir import studyzips

                return studyzips.exists(self, item)
            try:
                study_entry(self, item)
            except NotFound:
                return False
            return True
        try:
            candidates = self._candidates(item)
        except ValidationError:
            if isinstance(item, Dixel):
                raise  # a Dixel with neither a file name nor UIDs is a caller's mistake
            return False
        return any(os.path.isfile(p) for p in candidates)

    def count_instances(self, item: Any, level: Any = DicomLevel.STUDIES) -> int:
        """InstanceCounter port: files of the study in the folder's study index (kept current by this endpoint's
        puts and deletes; scanned on first use), members of its zip with ``study_zips``; 0 when absent."""
        if DicomLevel.from_label(level) != DicomLevel.STUDIES:
            return int(self.exists(item, level=level))
        if self.study_zips:
            from diana_dcmdir import studyzips

            return studyzips.count_members(self, item)
        try:
            return len(study_entry(self, item)[1].paths)
        except NotFound:
            return 0

    def delete(self, item: Any, level: Any = None, **kwargs: Any) -> bool:
        """Remove the item's file (at study level: every file of the study); False when it was not there."""
        refuse_unknown(f"DcmDir {self.name!r}", "delete", kwargs)
        if level is not None and DicomLevel.from_label(level) == DicomLevel.STUDIES:
            if self.study_zips:
                from diana_dcmdir import studyzips

                return studyzips.delete(self, item)
            try:
                oid, entry = study_entry(self, item)
            except NotFound:
                return False
            for path in entry.paths:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
            self.studies().discard(oid)
            return True
        try:
            path = self._locate(item)
            os.remove(path)
        except (NotFound, FileNotFoundError):
            return False
        except OSError as exc:
            raise self._unwritable("remove", os.path.basename(path), exc) from None
        if self._studies is not None:
            self._studies.discard_path(path)
        return True

    def update(self, item: Any, data: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
        """Set tags (keyword -> value; None deletes) in the item's file, rewritten atomically; returns its path."""
        path = self._locate(item)
        _, ds = reading.read_file(path)
        for key, value in dict(data or {}, **kwargs).items():
            if value is None:
                if key in ds:
                    delattr(ds, key)
            else:
                setattr(ds, key, value)
        atomic_write(path, reading.dataset_bytes(ds))
        return path

    def find(self, query: Mapping[str, Any] | None = None, level: Any = None, **kwargs: Any) -> Iterator[Dixel]:  # type: ignore[override]
        """Lazily yield the Dixels (headers) whose tags match ``query`` (exact, or glob with * ? [); bad files
        are skipped and recorded in ``last_report``. At study level: one Dixel per matching study. Keyword
        arguments named like DICOM keywords (``PatientID=...``) are query terms too."""
        refuse_unknown(f"DcmDir {self.name!r}", "find", {k: v for k, v in kwargs.items() if not k[:1].isupper()})
        if level is not None and DicomLevel.from_label(level) == DicomLevel.STUDIES:
            if self.study_zips:
                from diana_dcmdir import studyzips

                return iter(studyzips.find_studies(self, dict(query or {})))
            return iter(self.studies().find(dict(query or {})))
        query = dict(query or {}, **kwargs)
        return (d for d in self.index() if matches(d.tags, query))

    def anonymize(self, item: Any, level: Any = DicomLevel.INSTANCES, replacement_map: Any = None,
                  pseudonymizer: Pseudonymizer | None = None, **kwargs: Any) -> Dixel:
        """Anonymizer port: write a pseudonymized copy of an instance file beside it; the new Dixel (tags)."""
        if DicomLevel.from_label(level) != DicomLevel.INSTANCES:
            raise NotSupportedError(f"DcmDir {self.name!r} anonymizes instance files; for studies use a DcmDir "
                                    "with anonymizing: true as the destination")
        from diana_dcmdir.rawpath import anonymize_bytes

        path = self._locate(item)
        with open(path, "rb") as fh:
            data, ds = anonymize_bytes(fh.read(), pseudonymizer or self.pseudonymizer, name=os.path.basename(path))
        fn = layout.instance_file_name(ds)
        atomic_write(self.fullpath(fn), data)
        return Dixel.from_pydicom(ds, fn=self.fullpath(fn), convert=dataset_tags)

    # --- listing and bulk reads -----------------------------------------------------------------------
    def read_header(self, path: str | os.PathLike[str]) -> Any:
        """The header-only dataset of one file (one open, stops before pixel data); InvalidDicom names the file."""
        return reading.read_header(os.fspath(path))

    def read_keys(self, path: str | os.PathLike[str], keys: Iterable[str]) -> Any:
        """The header of one file parsed only up to the last of ``keys`` (KeysReader port: routing conditions)."""
        return reading.read_keys(os.fspath(path), keys, reading.read_header)

    def subdirs(self) -> Iterator[str]:
        """Lazily yield the folder's subdirectories in the configured recurse style."""
        if self.recurse_style == "ORTHANC":
            return layout.orthanc_subdirs(self.path)
        return layout.unstructured_subdirs(self.path)

    def files(self, base: str | None = None) -> Iterator[str]:
        """Lazily yield every file path under ``base`` (default: the folder)."""
        return layout.walk_files(base or self.path, self.recurse_style)

    def __iter__(self) -> Iterator[str]:
        return self.files()

    def index(self, source: str | Iterable[str] | None = None, report: ReadReport | None = None,
              keys: Iterable[str] | None = None) -> Iterator[Dixel]:
        """Header-only Dixels for a folder or an iterable of paths; unreadable files go to ``report`` (also
        ``last_report``), moved to ``quarantine`` when set, and the walk goes on. ``keys`` (keywords) limits the
        tags converted per file, which is most of the cost when only a few are needed (e.g. AccessionNumber)."""
        wanted = tuple(keys) if keys is not None else None
        report = report if report is not None else ReadReport(quarantine=self.quarantine)
        self.last_report = report
        paths = self.files(source) if source is None or isinstance(source, (str, os.PathLike)) else source
        for path in paths:
            try:
                ds = reading.read_header(os.fspath(path))
            except InvalidDicom as exc:
                report.add_bad(os.fspath(path), str(exc))
                continue
            except OSError as exc:
                report.add_bad(os.fspath(path), f"{type(exc).__name__}: {exc.strerror}")
                continue
            report.read += 1
            if wanted is None:
                yield Dixel.from_pydicom(ds, fn=os.fspath(path), convert=dataset_tags)
            else:
                yield selected(ds, wanted, os.fspath(path))

    read_headers = index

    # --- zip archives ---------------------------------------------------------------------------------
    def put_zip(self, source: str | bytes | Dixel, pseudonymizer: Pseudonymizer | None = None) -> BulkResult:
        """Store every DICOM member of a zip (path, bytes, or a Dixel whose ``file`` is a zip) within
        ``zip_limits``; non-DICOM members and quarantined instances are counted as skipped (``folder_zips``)."""
        return folder_zips.put_zip(self, source, pseudonymizer)

    def write_zip(self, paths: Iterable[str], dest: str) -> int:
        """Write files into one zip at ``dest``, streamed from disk file by file; returns the member count."""
        return folder_zips.write_zip(paths, dest)

    def recover(self) -> int:
        """Remove the partial study zips a killed writer left in this folder (Recovering port); returns how many."""
        from diana_dcmdir.studyzips import recover_partial_zips

        return recover_partial_zips(self)

    def get_zip(self, item: Dixel | str, dest: str, level: Any = DicomLevel.STUDIES) -> int:
        """Zip the files of one study (a Dixel or a StudyInstanceUID; SERIES level uses SeriesInstanceUID)."""
        return folder_zips.get_zip(self, item, dest, level)
