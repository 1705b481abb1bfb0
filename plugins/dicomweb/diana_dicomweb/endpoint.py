"""DicomWeb endpoint: Diana's port over a DICOMweb archive (dcm4chee, Orthanc's plugin, cloud archives).

QIDO-RS through dicomweb-client (paged ``find``, ``exists``, the META view), WADO-RS streamed instance by instance
into a zip or a folder (``get``), STOW-RS in multipart batches of bounded size (``put``, ``put_many``), and DELETE
where the server has it. Items are addressed by UIDs ("study", "study/series", "study/series/instance", or a lone
series / instance UID resolved with QIDO), or by Dixels carrying them. Every failure goes through ``errors.translated``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

from attrs import define, field

from diana_core.bounded import read_bounded
from diana_core.delivery import carry_attempt_budget
from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel, DixelView
from diana_core.errors import (
    AuthenticationError,
    ConfigError,
    DianaError,
    EndpointUnavailable,
    NotFound,
    NotSupportedError,
    ValidationError,
)
from diana_core.ports import BulkResult, Endpoint, refuse_unknown, secret_field, verify_field
from diana_dicomweb import stow
from diana_dicomweb.errors import StowError, UnexpectedResponse, media_type, require_json, translated, unexpected
from diana_dicomweb.multipart import boundary_of, iter_parts
from diana_dicomweb.verify import confirmed
from diana_dicomweb.wado import write_parts

logger = logging.getLogger(__name__)

ItemRef = Dixel | str
WADO_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'  # as stored: no transcoding
AUTH_KINDS = ("none", "basic", "bearer")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_KEYS = ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
JSON_MEDIA = ("application/dicom+json", "application/json")
_COUNT_KEYS = {DicomLevel.STUDIES: "NumberOfStudyRelatedInstances", DicomLevel.SERIES: "NumberOfSeriesRelatedInstances"}


def _level_of(item: ItemRef, level: DicomLevel | str | int | None) -> DicomLevel:
    if level is not None:
        return DicomLevel.from_label(level)
    return item.level if isinstance(item, Dixel) else DicomLevel.STUDIES


def _dixel(dataset: Mapping[str, Any], level: DicomLevel) -> Dixel:
    """A Dixel from one DICOM JSON dataset (QIDO result or WADO metadata); bulk data is left out."""
    from pydicom import Dataset

    ds = Dataset.from_json(dict(dataset), bulk_data_uri_handler=lambda *args: None)
    dixel = Dixel.from_pydicom(ds)
    dixel.level = level
    return dixel


@define(kw_only=True)
class DicomWeb(Endpoint):
    """A DICOMweb server (service-file ctype "DicomWeb"): ``url`` is the base of /studies; auth none, basic or
    bearer (the token from the service file or from the environment variable named by ``token_env``). Without
    ``auth``, user/password mean basic and a token (or token_env) bearer.

    Fields:
        url: Base URL of the DICOMweb service (the one /studies is under).
        auth: none, basic (user + password) or bearer (token or token_env); default: what the credentials given imply
            (none without any); none with credentials is refused.
        user: User name for basic auth.
        password: Password for basic auth (a secret: from ${ENV} in the service file).
        token: Bearer token (a secret).
        token_env: Name of an environment variable holding the bearer token.
        verify: TLS verification: true, false, or the path of a CA bundle for a private CA.
        timeout: Seconds per HTTP request before the server counts as unavailable.
        retries: Retries of idempotent requests on transient errors (connection, 429, 5xx).
        workers: Parallel requests for bulk put/get.
        page_size: QIDO results per page.
        batch_bytes: Largest STOW-RS request body in bytes (instances are batched up to it).
        batch_count: Most instances per STOW-RS request.
    """

    name: str = "DicomWeb"
    url: str = ""
    auth: str | None = None  # None: implied by the credentials given (see __attrs_post_init__)
    user: str | None = None
    password: str | None = secret_field()
    token: str | None = secret_field()
    token_env: str | None = None
    verify: bool | str = verify_field()
    timeout: float = 60.0
    retries: int = 3
    workers: int = 4
    page_size: int = 100
    batch_bytes: int = 16 * 2**20
    batch_count: int = 64
    verify_stored: bool = True  # look up with QIDO what a STOW answer lists as stored (Orthanc 1.10 lists refusals)
    _session: Any = field(default=None, init=False, repr=False, eq=False)
    _client: Any = field(default=None, init=False, repr=False, eq=False)
    _lock: Any = field(factory=threading.Lock, init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"service {self.name!r}: url must start with http:// or https:// (the DICOMweb base)")
        basic, bearer = bool(self.user or self.password), bool(self.token or self.token_env)
        if self.auth is None:  # credentials given imply their kind: a user and password are never silently unsent
            if basic and bearer:
                raise ConfigError(f"service {self.name!r}: both user/password and a token are given; "
                                  "say which to send with auth: basic or auth: bearer")
            self.auth = "basic" if basic else "bearer" if bearer else "none"
        if self.auth not in AUTH_KINDS:
            raise ConfigError(f"service {self.name!r}: auth must be one of {', '.join(AUTH_KINDS)}")
        if self.auth == "none" and (basic or bearer):
            given = "user/password" if basic else "a token"
            raise ConfigError(f"service {self.name!r}: auth: none but {given} given (they would never be sent); "
                              "remove auth: none, or the credentials")
        if self.auth == "basic" and not (self.user and self.password):
            raise ConfigError(f"service {self.name!r}: auth basic needs user and password")
        if self.page_size < 1 or self.batch_count < 1 or self.batch_bytes < 1 or self.workers < 1:
            raise ConfigError(f"service {self.name!r}: page_size, batch_count, batch_bytes, workers must be positive")

    @property
    def where(self) -> str:
        return f"DicomWeb {self.name!r}"

    # --- connection ------------------------------------------------------------------------------------
    def _bearer(self) -> str:
        if self.token:
            return self.token
        value = os.environ.get(self.token_env or "") if self.token_env else None
        if not value:
            source = f"the environment variable {self.token_env}" if self.token_env else "token or token_env"
            raise ConfigError(f"service {self.name!r}: auth bearer needs a token; {source} is not set")
        return value

    def _connect(self) -> tuple[Any, Any]:
        """(requests Session, dicomweb-client) built on first use: pooled, retried on 429/503, authenticated."""
        with self._lock:
            if self._client is None:
                from dicomweb_client.api import DICOMwebClient

                from diana_dicomweb.session import make_session

                session = make_session(self.verify, self.retries, max(4, self.workers * 2))
                if self.auth == "basic":
                    session.auth = (str(self.user), str(self.password))
                elif self.auth == "bearer":
                    session.headers["Authorization"] = f"Bearer {self._bearer()}"
                try:
                    client = DICOMwebClient(url=self.url.rstrip("/"), session=session, timeout=self.timeout)
                except ValueError as exc:
                    raise ConfigError(f"service {self.name!r}: bad url: {exc}") from None
                client.set_http_retry_params(retry=False)  # the adapter retries
                self._session, self._client = session, client
            return self._session, self._client

    @property
    def client(self) -> Any:
        """The dicomweb-client ``DICOMwebClient`` (shares this endpoint's session)."""
        return self._connect()[1]

    def close(self) -> None:
        """Close the pooled connections (a later call reconnects)."""
        with self._lock:
            if self._session is not None:
                self._session.close()
            self._session = self._client = None

    def _url(self, *parts: str) -> str:
        return "/".join([self.url.rstrip("/"), *parts])

    # --- addressing --------------------------------------------------------------------------------------
    def _uids(self, item: ItemRef, level: DicomLevel) -> tuple[str, ...]:
        """(study[, series[, instance]]) UIDs of the item at ``level``; lone series/instance UIDs resolved by QIDO."""
        if level == DicomLevel.PATIENTS:
            raise NotSupportedError(f"{self.where}: DICOMweb has no patient level")
        depth = int(level) - 1
        if isinstance(item, Dixel):
            uids = [item.tag(k) for k in _KEYS[:depth]]
            if all(uids):
                return tuple(str(u) for u in uids)
            known = {k: str(item.tag(k)) for k in _KEYS[:depth] if item.tag(k)}
            if _KEYS[depth - 1] not in known:
                raise ValidationError(f"{self.where}: item has no {_KEYS[depth - 1]}")
            parts = [known[_KEYS[depth - 1]]]
        else:
            parts = [p for p in str(item).strip("/").split("/") if p]
        for part in parts:
            if not _UID.match(part):
                raise ValidationError(f"{self.where}: {part!r} is not a DICOM UID")
        if len(parts) == depth:
            return tuple(parts)
        if len(parts) != 1:
            raise ValidationError(f"{self.where}: a {level} is addressed as {'/'.join(_KEYS[:depth])} or its own UID")
        found = next(iter(self.find({_KEYS[depth - 1]: parts[0]}, level=level, limit=1)), None)
        if found is None:
            raise NotFound(f"{self.where}: {level} {parts[0]} not found")
        return tuple(str(found.tag(k)) for k in _KEYS[:depth])

    # --- port methods -----------------------------------------------------------------------------------
    def check(self) -> bool:
        """True when QIDO answers; False when unreachable; AuthenticationError when it refuses our credentials."""
        try:
            self._qido(DicomLevel.STUDIES, [("limit", "1")])
        except AuthenticationError:
            raise
        except (EndpointUnavailable, UnexpectedResponse) as exc:
            logger.warning("%s", exc)
            return False
        return True

    def find(self, query: Mapping[str, Any] | Dixel | None = None, level: DicomLevel | str | int = DicomLevel.STUDIES,
             limit: int | None = None, offset: int = 0, fields: Iterable[str] = (), fuzzy: bool | None = None,
             **kwargs: Any) -> Iterator[Dixel]:
        """QIDO-RS matches at ``level`` as Dixels, fetched lazily page by page (``page_size`` per request).

        Any query key goes to the server (keywords or tags; "" asks for the field to be returned); ``limit`` and
        ``offset`` bound the whole result.
        """
        refuse_unknown(self.where, "find", kwargs, ("retrieve",))
        if kwargs.get("retrieve"):
            raise NotSupportedError(f"{self.where}: DICOMweb results need no retrieve; get() them directly")
        lvl = DicomLevel.from_label(level)
        if lvl == DicomLevel.PATIENTS:
            raise NotSupportedError(f"{self.where}: QIDO-RS has no {lvl} level")
        q = query.tags if isinstance(query, Dixel) else dict(query or {})
        params: list[tuple[str, str]] = [
            (k, ",".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v))
            for k, v in q.items() if v not in (None, "")
        ]
        params += [("includefield", k) for k in sorted({*fields, *(k for k, v in q.items() if v in (None, ""))})]
        if fuzzy is not None:
            params.append(("fuzzymatching", "true" if fuzzy else "false"))
        return self._pages(lvl, params, limit, offset)

    def _pages(self, lvl: DicomLevel, params: list[tuple[str, str]], limit: int | None,
               offset: int) -> Iterator[Dixel]:
        remaining = limit
        while remaining is None or remaining > 0:
            size = self.page_size if remaining is None else min(self.page_size, remaining)
            page = self._qido(lvl, [*params, ("limit", str(size)), ("offset", str(int(offset)))])
            for dataset in page:
                yield _dixel(dataset, lvl)
            if len(page) < size:  # a short page is the last one
                return
            offset += len(page)
            remaining = None if remaining is None else remaining - len(page)

    def _qido(self, lvl: DicomLevel, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """One QIDO-RS request. Wildcards stay literal: Orthanc does not decode "%2A" (dicomweb-client's quoting)."""
        from urllib.parse import urlencode

        session, _ = self._connect()
        url = f"{self._url(str(lvl))}?{urlencode(params, safe='*?,')}"
        with translated(self.where, f"find {lvl}"):
            response = session.get(url, headers={"Accept": "application/dicom+json"}, timeout=self.timeout,
                                   stream=True)
            if response.status_code == 404:  # QIDO answers no match with an empty list, never 404
                raise ConfigError(f"{self.where}: HTTP 404 on QIDO-RS {lvl}: wrong URL (url must be the DICOMweb base)")
            response.raise_for_status()
            content = read_bounded(response, self.where, f"find {lvl}")
        # "no match" is a 204 or an empty DICOM JSON answer; an HTML page (an SSO login) is an error, not no match
        if response.status_code == 204 or (not content and media_type(response) in JSON_MEDIA):
            return []
        answer = require_json(response, self.where, f"find {lvl}")
        if isinstance(answer, dict):  # some servers answer a lone match without the array
            return [answer]
        if not isinstance(answer, list):
            raise DianaError(f"{self.where}: find {lvl}: the answer is not DICOM JSON")
        return answer

    def exists(self, item: ItemRef, level: DicomLevel | str | int | None = None, **kwargs: Any) -> bool:
        """True if QIDO finds the item's UID at its level; outages raise."""
        refuse_unknown(self.where, "exists", kwargs)
        lvl = _level_of(item, level)
        try:
            uids = self._uids(item, lvl)
        except NotFound:
            return False
        query = dict(zip(_KEYS, uids))
        return next(iter(self.find(query, level=lvl, limit=1)), None) is not None

    def get(self, item: ItemRef, level: DicomLevel | str | int | None = None,
            view: DixelView | str | int = DixelView.TAGS, dest: str | os.PathLike[str] | IO[bytes] | None = None,
            **kwargs: Any) -> Dixel:
        """The item with the views asked: META (QIDO attributes), TAGS (WADO metadata of the instance, or of the
        first instance of a series/study), FILE (an instance's bytes; a series or study streamed to ``dest``,
        a zip path or file object, or a folder)."""
        refuse_unknown(self.where, "get", kwargs)
        lvl, wanted = _level_of(item, level), DixelView.from_label(view)
        uids = self._uids(item, lvl)
        ids = dict(zip(_KEYS, uids))
        dixel = Dixel(tags=dict(ids), level=lvl)
        if DixelView.META in wanted or not wanted:
            found = next(iter(self.find(ids, level=lvl, limit=1)), None)
            if found is None:
                raise NotFound(f"{self.where}: {lvl} {uids[-1]} not found")
            dixel.tags.update(found.tags)
        if DixelView.TAGS in wanted:
            dixel.tags.update(self._metadata(uids))
        if DixelView.FILE in wanted:
            self._get_file(dixel, uids, lvl, dest)
        if isinstance(item, Dixel) and item.fn and "FileName" not in dixel.meta:
            dixel.meta["FileName"] = item.fn
        return dixel

    def _metadata(self, uids: tuple[str, ...]) -> dict[str, Any]:
        if len(uids) < 3:
            first = next(iter(self.find(dict(zip(_KEYS, uids)), level=DicomLevel.INSTANCES, limit=1,
                                        fields=list(_KEYS))), None)
            if first is None:
                raise NotFound(f"{self.where}: {DicomLevel(len(uids) + 1)} {uids[-1]} not found (no instances)")
            uids = tuple(str(first.tag(k)) for k in _KEYS)
        session, _ = self._connect()
        url = self._url("studies", uids[0], "series", uids[1], "instances", uids[2], "metadata")
        with translated(self.where, f"metadata of {uids[-1]}"):
            response = session.get(url, headers={"Accept": "application/dicom+json"}, timeout=self.timeout)
            response.raise_for_status()
        datasets = require_json(response, self.where, f"metadata of {uids[-1]}")
        if not datasets:
            raise NotFound(f"{self.where}: instance {uids[-1]} has no metadata")
        return _dixel(datasets[0] if isinstance(datasets, list) else datasets, DicomLevel.INSTANCES).tags

    def _get_file(self, dixel: Dixel, uids: tuple[str, ...], lvl: DicomLevel, dest: Any) -> None:
        path = ["studies", uids[0]] + (["series", uids[1]] if len(uids) > 1 else []) + (
            ["instances", uids[2]] if len(uids) > 2 else [])
        if lvl == DicomLevel.INSTANCES and dest is None:
            dixel.file = next(iter(self.wado_parts(*path)), None)
            if dixel.file is None:
                raise NotFound(f"{self.where}: instance {uids[-1]} not found")
            return
        if dest is None:
            raise ValidationError(f"{self.where}: the FILE view of {lvl} {uids[-1]} is a zip archive or a folder; "
                                  "give dest= (a path, a folder or a binary file object) to stream it")
        if lvl == DicomLevel.INSTANCES:
            data = next(iter(self.wado_parts(*path)))
            if isinstance(dest, (str, os.PathLike)):
                with open(dest, "wb") as fh:
                    fh.write(data)
            else:
                dest.write(data)
            count = 1
        else:
            count = write_parts(self.wado_parts(*path), dest)
        if count == 0:
            raise NotFound(f"{self.where}: {lvl} {uids[-1]} not found (no instances)")
        dixel.meta["Instances"] = count
        if isinstance(dest, (str, os.PathLike)):
            dixel.meta["FileName"] = os.fspath(dest)

    def wado_parts(self, *path: str) -> Iterator[bytes]:
        """The instances under a WADO-RS path ("studies", uid[, "series", uid...]) as they stream in."""
        session, _ = self._connect()
        singular = {"studies": "study", "series": "series", "instances": "instance"}
        what = f"retrieve {singular.get(path[-2], path[-2])} {path[-1]}" if len(path) >= 2 else "retrieve"
        response = None
        try:
            with translated(self.where, what):
                response = session.get(self._url(*path), headers={"Accept": WADO_ACCEPT}, stream=True,
                                       timeout=self.timeout)
                response.raise_for_status()
                boundary = boundary_of(response.headers.get("Content-Type", ""))
                if boundary is None:  # a single non-encapsulated instance (some servers do this); an HTML page is not
                    if media_type(response) not in ("application/dicom", "application/octet-stream"):
                        raise unexpected(self.where, what, response, "DICOM (multipart/related or application/dicom)")
                    yield response.content
                    return
                yield from iter_parts(response.iter_content(chunk_size=2**20), boundary)
        finally:
            if response is not None:
                response.close()

    def count_instances(self, item: ItemRef, level: DicomLevel | str | int = DicomLevel.STUDIES) -> int:
        """InstanceCounter port: instances the archive holds under the item (0 when absent), from QIDO's
        NumberOfStudy/SeriesRelatedInstances, else by listing them. What put and collect verify by."""
        lvl = _level_of(item, level)
        try:
            uids = self._uids(item, lvl)
        except NotFound:
            return 0
        query = dict(zip(_KEYS, uids))
        if lvl in _COUNT_KEYS:
            found = next(iter(self.find(query, level=lvl, limit=1, fields=[_COUNT_KEYS[lvl]])), None)
            if found is None:
                return 0
            with contextlib.suppress(TypeError, ValueError):
                return int(found.tag(_COUNT_KEYS[lvl]))
        return sum(1 for _ in self.find(query, level=DicomLevel.INSTANCES, fields=["SOPInstanceUID"]))

    # --- STOW ----------------------------------------------------------------------------------------------
    def put(self, item: Dixel | str | os.PathLike[str] | bytes, workers: int | None = None, **kwargs: Any) -> Any:
        """STOW-RS an instance (Dixel with file bytes or FileName, bytes, a path) -> its SOP Instance UID; a
        folder, a zip or a study Dixel whose FileName is one -> BulkResult. StowError when anything failed."""
        refuse_unknown(self.where, "put", kwargs)
        result, stored = self._store([item], workers, None)
        if result.failed:
            total = result.done + len(result.failed)
            raise StowError(f"{self.where}: stored {result.done} of {total} instances; {len(result.failed)} failed "
                            f"(first: {result.failed[0][1]})", result)
        single = isinstance(item, (bytes, bytearray)) or (isinstance(item, Dixel) and item.file is not None)
        return stored[0] if single and len(stored) == 1 else result

    def put_many(self, items: Iterable[Any], workers: int | None = None,
                 progress: Callable[[int, int | None], None] | None = None) -> BulkResult:
        """STOW-RS many instances (Dixels, paths, folders, zips, bytes) in batches of at most ``batch_count``
        instances and ``batch_bytes``, ``workers`` requests at a time; failures are listed, not raised."""
        return self._store(items, workers, progress)[0]

    def _store(self, items: Iterable[Any], workers: int | None,
               progress: Callable[[int, int | None], None] | None) -> tuple[BulkResult, list[str]]:
        session, _ = self._connect()
        url = self._url("studies")

        def post(batch: list[stow.Part]) -> stow.Outcome:
            return stow.post_batch(session, url, batch, self.where, self.timeout)

        post = carry_attempt_budget(post)  # the pool's threads keep a watcher's one-short-try rule
        result, stored, studies = stow.store(items, post, max(1, int(workers or self.workers)), self.batch_bytes,
                                             self.batch_count, progress)
        if self.verify_stored and stored:
            result, stored = confirmed(self, result, stored, studies)
        logger.info("%s: STOW stored %d, failed %d", self.name, result.done, len(result.failed))
        return result, stored

    # --- delete --------------------------------------------------------------------------------------------
    def delete(self, item: ItemRef, level: DicomLevel | str | int | None = None, **kwargs: Any) -> bool:
        """DELETE the item where the server allows it (NotSupportedError otherwise); False when it was absent."""
        refuse_unknown(self.where, "delete", kwargs)
        lvl = _level_of(item, level)
        try:
            uids = self._uids(item, lvl)
        except NotFound:
            return False
        method = {1: "delete_study", 2: "delete_series", 3: "delete_instance"}[len(uids)]
        try:
            with translated(self.where, f"delete {lvl}"):
                getattr(self.client, method)(*uids)
        except NotFound:
            return False
        return True
