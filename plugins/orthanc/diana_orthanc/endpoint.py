"""Orthanc endpoint: Diana's CRUD port over Dixels (every DICOM level) on an Orthanc server, via OrthancGateway.

Also the Anonymizer and Sender capabilities (pseudonymization relayed through the one local engine, so
the new study's id is known beforehand) and a bounded-concurrency bulk upload (``put_many``).
"""

from __future__ import annotations

import logging
import os
import queue
import zipfile
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

from attrs import define, field

from diana_core.archives import ZipLimits, check_archive, iter_members
from diana_core.delivery import carry_attempt_budget
from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel, DixelView
from diana_core.errors import DianaError, NotFound, ValidationError
from diana_core.ports import BulkResult, Endpoint, is_query, refuse_unknown, secret_field, verify_field

logger = logging.getLogger(__name__)

ZIP_IN_ONE_POST = 256 * 1024 * 1024  # larger study archives are sent member by member (bounded memory)

ItemRef = Dixel | str
COMMON_QUERY_KEYS = ("AccessionNumber", "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyDate",
                     "StudyTime", "StudyDescription", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                     "SeriesDescription", "SeriesNumber", "Modality", "ModalitiesInStudy", "InstanceNumber",
                     "ReferringPhysicianName", "InstitutionName", "BodyPartExamined")
_VIEW_NAMES = ("meta", "metakv", "tags", "file")


def _level_of(item: ItemRef, level: DicomLevel | str | int | None) -> DicomLevel:
    if level is not None:
        return DicomLevel.from_label(level)
    return item.level if isinstance(item, Dixel) else DicomLevel.STUDIES


def _oid(item: ItemRef) -> str:
    return item.oid() if isinstance(item, Dixel) else str(item)


@define(kw_only=True)
class Orthanc(Endpoint):
    """An Orthanc server as a Diana endpoint (service-file ctype "Orthanc"); credentials have no default.

    Fields:
        protocol: http or https.
        host: Orthanc host name.
        port: Orthanc's HTTP port.
        path: URL path prefix when Orthanc sits behind a reverse proxy.
        peername: The name other Orthancs know this one by (OrthancPeers) for peer transfers.
        user: REST user (no default).
        password: Its password (a secret: from ${ENV}).
        meta_keys: Orthanc metadata keys read into Dixel.meta.
        verify: TLS verification: true, false, or the path of a CA bundle.
        timeout: Seconds per request before the server counts as unavailable.
    """

    name: str = "Orthanc"
    protocol: str = "http"
    host: str = "localhost"
    port: int = 8042
    path: str | None = None
    aet: str | None = None  # the AE title this Orthanc answers to; read from /system when not given
    peername: str = "orthanc"
    user: str | None = None
    password: str | None = secret_field()
    meta_keys: list[str] = field(factory=list)
    verify: bool | str = verify_field()
    timeout: float = 30.0
    retries: int = 3  # reads: attempts after the first (connect errors, 502-504, dropped answers)
    upload_retries: int = 8  # uploads: ~20 s of backoff, long enough for an Orthanc restart
    zip_limits: ZipLimits = field(factory=ZipLimits)  # caps for archives uploaded (zip bombs are refused)
    _gateway: Any = field(default=None, init=False, repr=False, eq=False)

    @property
    def gateway(self) -> Any:
        """The REST gateway (one requests Session), built on first use."""
        if self._gateway is None:
            from diana_orthanc.gateway import OrthancGateway

            self._gateway = OrthancGateway(protocol=self.protocol, host=self.host, port=self.port, path=self.path,
                                           name=f"Orthanc {self.name!r}", user=self.user, password=self.password,
                                           aet=self.aet or "ORTHANC", verify=self.verify, timeout=self.timeout,
                                           retries=self.retries, upload_retries=self.upload_retries)
        return self._gateway

    # --- port methods ----------------------------------------------------------------------------
    def own_aet(self) -> str:
        """The AE title this Orthanc answers to (C-MOVE destination): ``aet`` if configured, else its /system's."""
        if not self.aet:
            self.aet = str(self.gateway.system()["DicomAet"])
            self.gateway.aet = self.aet
        return self.aet

    def diagnose(self) -> tuple[bool, str]:
        """(available, why not): connection refused, DNS, TLS, refused credentials (never the password)."""
        from diana_core.errors import AuthenticationError, EndpointUnavailable

        try:
            self.gateway.system()
        except AuthenticationError:
            return False, f"credentials refused for user {self.user!r}"
        except EndpointUnavailable as exc:
            return False, exc.reason or str(exc)
        return True, ""

    def check(self) -> bool:
        """True when /system answers; False when unreachable; AuthenticationError on refused credentials."""
        from diana_core.errors import AuthenticationError, EndpointUnavailable

        try:
            self.gateway.system()
        except AuthenticationError:
            raise
        except EndpointUnavailable as exc:
            logger.warning("%s", exc)
            return False
        return True

    def get(self, item: ItemRef, level: DicomLevel | str | int | None = None,
            view: DixelView | str | int = DixelView.TAGS, dest: str | os.PathLike[str] | IO[bytes] | None = None,
            **kwargs: Any) -> Dixel:
        """Item at ``level`` with the views asked (META|METAKV|TAGS|FILE combine); FILE above instances needs ``dest``."""
        refuse_unknown(self.name, "get", kwargs)
        lvl, oid, view = _level_of(item, level), _oid(item), DixelView.from_label(view)
        meta: dict[str, Any] = {"ID": oid}
        tags: dict[str, Any] = {}
        file = None
        if DixelView.META in view or not view:
            meta.update(self.gateway.get(oid, lvl, "meta"))
            for key in self.meta_keys:
                try:
                    meta[key] = self.gateway.get_metadata(oid, lvl, key)
                except NotFound:
                    meta[key] = None
        if DixelView.METAKV in view:
            meta["Metadata"] = self.gateway.get_metadata(oid, lvl)
        if DixelView.TAGS in view:
            tags = dict(self.gateway.get(oid, lvl, "tags"))
            if lvl != DicomLevel.INSTANCES:
                # shared-tags drops what differs between instances; main tags are always there
                main = self.gateway.get(oid, lvl, "meta") if "MainDicomTags" not in meta else meta
                tags = {**main.get("PatientMainDicomTags", {}), **main.get("MainDicomTags", {}), **tags}
        if DixelView.FILE in view:
            if dest is not None:
                if lvl == DicomLevel.INSTANCES:
                    self.gateway.get_file(oid, dest)
                else:
                    self.gateway.get_archive(oid, lvl, dest)
                if isinstance(dest, (str, os.PathLike)):
                    meta["FileName"] = os.fspath(dest)
            elif lvl == DicomLevel.INSTANCES:
                file = self.gateway.get(oid, lvl, "file")
            else:
                raise ValidationError(f"{self.name}: the FILE view of {lvl} {oid} is a zip archive; give dest= "
                                      "(a path or binary file object) to stream it")
        dixel = Dixel.from_orthanc(meta=meta, tags=tags, level=lvl, file=file)
        if isinstance(item, Dixel) and item.fn and "FileName" not in dixel.meta:
            dixel.meta["FileName"] = item.fn
        return dixel

    def put(self, item: Dixel | str | os.PathLike[str] | bytes, workers: int = 4, **kwargs: Any) -> Any:
        """Upload an instance (Dixel with ``file`` bytes or a FileName, a path, or bytes); returns its Orthanc id.

        A study/series Dixel whose FileName is a zip archive is unpacked member by member (streamed, bounded
        concurrency); returns the BulkResult and raises EndpointUnavailable if any member failed.
        """
        refuse_unknown(self.name, "put", kwargs)
        if isinstance(item, Dixel) and item.level < DicomLevel.INSTANCES and item.fn and zipfile.is_zipfile(item.fn):
            return self._put_archive(item.fn, workers)
        return str(self._put_one(item)["ID"])

    def _put_archive(self, path: str, workers: int) -> BulkResult:
        where = f"{self.name}: archive {os.path.basename(path)!r}"
        if os.path.getsize(path) <= ZIP_IN_ONE_POST:
            # Orthanc >= 1.8.2 unpacks a zip POSTed to /instances: one request instead of one per instance; it
            # would also unpack a zip bomb, so the archive is inflated here first (streamed, within zip_limits)
            check_archive(path, where, self.zip_limits)
            answers = self.gateway.put(path, content_type="application/zip")
            answers = answers if isinstance(answers, list) else [answers]
            bad = [a for a in answers if a.get("Status") not in ("Success", "AlreadyStored")]
            if not bad:
                skipped = sum(1 for a in answers if a.get("Status") == "AlreadyStored")
                return BulkResult(done=len(answers) - skipped, skipped=skipped)
        members = (data for name, data in iter_members(path, where, self.zip_limits)
                   if not name.endswith("DICOMDIR"))
        result = self.put_many(members, workers=workers)
        if result.failed:
            from diana_core.errors import EndpointUnavailable

            raise EndpointUnavailable(f"{self.name}: {len(result.failed)} of {result.done + len(result.failed)} "
                                      f"instances of the archive were not stored (first: {result.failed[0][1]})")
        return result

    def _put_one(self, item: Any) -> dict[str, Any]:
        if isinstance(item, Dixel):
            if item.file is not None:
                return self._stored(self.gateway.put(self._inspected(item.file)))
            if item.fn:
                return self._stored(self.gateway.put(self._inspected(item.fn)))
            raise ValidationError(f"{self.name}: item {item.summary()['id']} has no file bytes and no FileName to upload")
        return self._stored(self.gateway.put(self._inspected(item)))

    def _stored(self, answer: Any) -> dict[str, Any]:
        """Orthanc's answer when it holds the instance; HTTP 200 with "FilteredOut" (a Lua filter or plugin refused
        it) is not a success."""
        said = answer if isinstance(answer, dict) else {}
        if said.get("Status") not in ("Success", "AlreadyStored"):
            raise ValidationError(f"{self.name}: Orthanc did not store instance {said.get('ID', '?')} "
                                  f"(Status {said.get('Status')!r})")
        return said

    def _inspected(self, payload: Any) -> Any:
        """Orthanc unpacks any zip POSTed to /instances: a zip payload is inflated here first, within zip_limits.
        A path is read here, once (the bytes both checked and sent; OSError names the file to the caller)."""
        if isinstance(payload, (str, os.PathLike)):
            with open(payload, "rb") as fh:
                payload = fh.read()
        head = bytes(payload[:4]) if isinstance(payload, (bytes, bytearray)) else b""
        if head == b"PK\x03\x04":
            check_archive(payload, f"{self.name}: archive", self.zip_limits)
        return payload

    def find(self, query: Mapping[str, Any] | Dixel, level: DicomLevel | str | int = DicomLevel.STUDIES,
             domain: str | None = None, retrieve: bool = False, **kwargs: Any) -> list[Dixel]:
        """Local matches (tools/find) as Dixels with meta; with ``domain``, C-FIND on that modality (and retrieve)."""
        refuse_unknown(self.name, "find", kwargs)
        lvl = DicomLevel.from_label(level)
        q = query.tags if isinstance(query, Dixel) else dict(query)
        q = {k: str(v) for k, v in q.items() if isinstance(v, (str, int, float))}
        from diana_orthanc.gateway import OrthancRequestError

        try:
            if domain:
                answers = self.gateway.rfind(q, domain, lvl, retrieve=retrieve,
                                             target_aet=self.own_aet() if retrieve else None)
                return [Dixel.from_orthanc(tags=a, level=lvl) for a in answers]
            return [Dixel.from_orthanc(meta=m, level=lvl) for m in self.gateway.find(q, lvl, expand=True)]
        except OrthancRequestError as exc:
            if exc.status in (400, 500):  # Orthanc says "Unknown DICOM tag" without naming it: find which
                self._check_query_keys(q, lvl)
            raise

    def _check_query_keys(self, query: Mapping[str, str], level: DicomLevel) -> None:
        """ValidationError naming the first key Orthanc does not know as a DICOM tag (one tiny find per key)."""
        from diana_orthanc.gateway import OrthancRequestError

        for key in query:
            try:
                self.gateway.find({key: "*"}, level, limit=1)
            except OrthancRequestError:
                import difflib

                close = difflib.get_close_matches(key, COMMON_QUERY_KEYS, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValidationError(f"{self.name}: unknown query key {key!r} (not a DICOM keyword Orthanc "
                                      f"knows){hint}") from None

    def exists(self, item: ItemRef, level: DicomLevel | str | int | None = None, **kwargs: Any) -> bool:
        """True if Orthanc has the item, False on a real 404; outages raise. A query mapping asks tools/find."""
        refuse_unknown(self.name, "exists", kwargs, ("domain",))
        if is_query(item):
            return self.exists_query(item, level=level, domain=kwargs.get("domain"))
        try:
            self.gateway.get(_oid(item), _level_of(item, level), "meta")
        except NotFound:
            return False
        return True

    def update(self, item: ItemRef, data: Mapping[str, Any], level: DicomLevel | str | int | None = None,
               kind: str = "metadata", **kwargs: Any) -> Any:
        """``kind="metadata"``: put each key as metadata (returns the item); ``"tags"``: /modify (returns new Dixel)."""
        lvl, oid = _level_of(item, level), _oid(item)
        if kind == "tags":
            answer = self.gateway.modify(oid, lvl, data)
            return self.get(answer["ID"], lvl, view=DixelView.META | DixelView.TAGS)
        if kind != "metadata":
            raise ValidationError(f"{self.name}: update kind must be 'metadata' or 'tags', not {kind!r}")
        for key, value in data.items():
            self.gateway.put_metadata(oid, lvl, key, str(value))
        return item

    def delete(self, item: ItemRef, level: DicomLevel | str | int | None = None, **kwargs: Any) -> bool:
        """Delete the item; False when it was not there."""
        refuse_unknown(self.name, "delete", kwargs)
        try:
            self.gateway.delete(_oid(item), _level_of(item, level))
        except NotFound:
            return False
        return True

    # --- capabilities ------------------------------------------------------------------------------
    def server_url(self) -> str:
        """Base URL of this Orthanc (Hosted port: the collector refuses a destination on its source's server)."""
        return str(self.gateway.base_url)

    def count_instances(self, item: ItemRef, level: DicomLevel | str | int = DicomLevel.STUDIES) -> int:
        """Instances Orthanc holds under the item (0 when absent); the collector's completeness check."""
        lvl = DicomLevel.from_label(level)
        if lvl == DicomLevel.INSTANCES:
            return int(self.exists(item, level=lvl))
        try:
            return len(self.gateway._json("GET", f"{lvl}/{_oid(item)}/instances", what=f"{lvl} {_oid(item)}"))
        except NotFound:
            return 0

    def anonymize(self, item: ItemRef, level: DicomLevel | str | int = DicomLevel.STUDIES,
                  replacement_map: Mapping[str, Any] | None = None, pseudonymizer: Any = None,
                  remove_original: bool = False, **kwargs: Any) -> Dixel:
        """Pseudonymize with the one local engine (download, pseudonymize, upload here); returns the new Dixel.

        Orthanc's own /anonymize is not used: it would give different output from every other path. The
        pseudonymizer (key, profile) decides everything; ``replacement_map`` is accepted for compatibility only.
        """
        from diana_core.usecases.relay import pseudonymize_in

        lvl, oid = DicomLevel.from_label(level), _oid(item)
        new_id = pseudonymize_in(self, oid, lvl, pseudonymizer).oid()
        if remove_original:
            self.gateway.delete(oid, lvl)
        logger.info("%s: anonymized %s %s -> %s", self.name, lvl, oid, new_id)
        return self.get(new_id, lvl, view=DixelView.META | DixelView.TAGS)

    def send(self, item: ItemRef, dest: str | None = None, dest_type: str = "peers",
             level: DicomLevel | str | int | None = None, **kwargs: Any) -> dict[str, Any]:
        """Push an item to a peer (``dest_type="peers"``) or a DICOM modality (``"modalities"``)."""
        return self.gateway.send(_oid(item), dest or self.peername, dest_type)

    def get_metadata(self, item: ItemRef, key: str | None = None, level: DicomLevel | str | int | None = None) -> Any:
        """One metadata value, or all of them as a dict."""
        return self.gateway.get_metadata(_oid(item), _level_of(item, level), key)

    def put_metadata(self, item: ItemRef, key: str, value: Any, level: DicomLevel | str | int | None = None) -> None:
        """Set one metadata value on the item."""
        self.gateway.put_metadata(_oid(item), _level_of(item, level), key, str(value))

    def inventory(self, level: DicomLevel | str | int = DicomLevel.STUDIES) -> list[str]:
        """Ids of every item at ``level``."""
        return self.gateway.inventory(level)

    def statistics(self) -> dict[str, Any]:
        """Orthanc's counts and disk usage."""
        return self.gateway.statistics()

    def clear(self, confirm: bool = False) -> int:
        """Delete every patient (the original's ``clear()``); refuses without ``confirm=True`` because it empties
        the server. Returns how many patients were deleted."""
        if not confirm:
            raise ValidationError(f"{self.name}: clear() deletes every study on the server; call clear(confirm=True)")
        count = 0
        for oid in self.gateway.inventory(DicomLevel.PATIENTS):
            try:
                self.gateway.delete(oid, DicomLevel.PATIENTS)
                count += 1
            except NotFound:
                continue
        return count

    def change_log(self, current: int = 0, limit: int = 1000) -> dict[str, Any]:
        """One page of Orthanc's change log after ``current`` (ObservableOrthanc.changes() turns it into events)."""
        return self.gateway.changes(current, limit)

    def get_annotation(self, item: ItemRef) -> Mapping[str, Any] | None:
        """Summary of the Osimis viewer's ROI annotations on a study (see ``osimis_extras``)."""
        from diana_orthanc.osimis_extras import get_annotation

        return get_annotation(self, item)

    # --- bulk --------------------------------------------------------------------------------------
    def put_many(self, items: Iterable[Any], workers: int = 4,
                 progress: Callable[[int, int | None], None] | None = None) -> BulkResult:
        """Upload many instances (Dixels, paths or bytes) with ``workers`` threads; AlreadyStored counts as skipped."""
        workers = max(1, int(workers))
        if self.gateway.pool_size < workers:
            self.gateway.resize_pool(workers)
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        done = skipped = finished = 0
        failed: list[tuple[str, str]] = []
        pending: dict[Future, Any] = {}

        def collect(futs: Iterable[Future]) -> None:
            nonlocal done, skipped, finished
            for fut in futs:
                item = pending.pop(fut)
                try:
                    status = fut.result().get("Status")
                except DianaError as exc:
                    failed.append((_item_label(item), str(exc)))
                except OSError as exc:
                    failed.append((_item_label(item), f"cannot read: {exc.strerror}"))
                else:
                    if status == "AlreadyStored":
                        skipped += 1
                    else:
                        done += 1
                finished += 1
                if progress:
                    progress(finished, total)

        put_one = carry_attempt_budget(self._put_one)  # a watcher's one-short-try rule holds in the workers too
        # finished futures queue themselves: O(1) per item, where wait(FIRST_COMPLETED) re-locks every pending one
        finished_q: queue.SimpleQueue[Future] = queue.SimpleQueue()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="orthanc-put") as pool:
            for item in items:
                if len(pending) >= workers * 4:  # bounded: paths are read in the workers, not all up front
                    collect((finished_q.get(),))
                fut = pool.submit(put_one, item)
                pending[fut] = item
                fut.add_done_callback(finished_q.put)
            while pending:
                collect((finished_q.get(),))
        logger.info("%s: bulk upload done=%d skipped=%d failed=%d", self.name, done, skipped, len(failed))
        return BulkResult(done=done, skipped=skipped, failed=failed)


    def put_files(self, paths: Iterable[str], workers: int = 4,
                  progress: Callable[[int, int | None], None] | None = None) -> BulkResult:
        """FileUploader: upload files by path, read in the workers; Orthanc judges them (400: not DICOM).
        Failures are named by the full path."""
        named = (Dixel(meta={"FileName": os.fspath(p)}, level=DicomLevel.INSTANCES) for p in paths)
        return self.put_many(named, workers=workers, progress=progress)


def _item_label(item: Any) -> str:
    if isinstance(item, Dixel):
        return str(item.summary()["id"])
    if isinstance(item, (str, os.PathLike)):
        return Path(item).name
    return "<bytes>"
