"""OrthancGateway: Diana-agnostic REST client for Orthanc (no Dixels), used by the Orthanc endpoints.

One ``requests.Session`` per gateway, urllib3 ``Retry`` with backoff on idempotent methods (connect errors are
retried for every method: nothing was sent), timeouts, TLS verification on. Uploads (POST /instances) go through a
second session whose ``Retry`` also covers POST, 5xx and dropped connections: storing an instance twice is harmless
in Orthanc ("AlreadyStored"), so an upload is retried with backoff through a server restart. HTTP failures become typed Diana errors:
unreachable -> ``EndpointUnavailable``, 401/403 -> ``AuthenticationError``, 404 -> ``NotFound``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from diana_core.bounded import read_bounded
from diana_core.connectivity import why_unreachable
from diana_core.delivery import attempt_budget
from diana_core.dicom import DicomLevel, orthanc_id
from diana_core.errors import (
    AuthenticationError,
    ConfigError,
    DianaError,
    EndpointUnavailable,
    InvalidDicom,
    NotFound,
    ValidationError,
)
from diana_orthanc.prepared import PreparedRequests

logger = logging.getLogger(__name__)

__all__ = ["OrthancGateway", "OrthancRequestError", "orthanc_id"]

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
CHUNK = 1 << 20
MAX_RESPONSE = 1 << 30  # an answer read into memory (JSON, one instance) larger than this is refused


class OrthancRequestError(DianaError):
    """Orthanc answered with an error other than 401/403/404 (the message carries Orthanc's own text)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def _lvl(level: DicomLevel | str | int) -> DicomLevel:
    return DicomLevel.from_label(level)


def _body_parts(query: Mapping[str, Any], level: DicomLevel | str, optional: tuple[str, ...]
                ) -> tuple[dict[str, Any], DicomLevel | str, dict[str, Any]]:
    """(tags, level, other body keys) from a tag mapping or a whole Orthanc body {"Level", "Query", ...}."""
    if not isinstance(query.get("Query"), Mapping):
        return dict(query), level, {}
    known = ("Level", "Query", *optional)
    unknown = sorted(set(query) - set(known))
    if unknown:
        raise ValidationError(f"Orthanc query body: unknown key {unknown[0]!r}; known keys: {', '.join(known)}")
    extra = {k: query[k] for k in optional if k in query}
    return dict(query["Query"]), query.get("Level", level), extra


def _environment(base_url: str, verify: bool | str) -> tuple[dict[str, str], bool | str, tuple[str, str] | None]:
    """(proxies, verify, netrc credentials) for base_url from the environment, read once per gateway: requests
    re-reads every environment variable for the proxies of each request (two passes, ~0.3 ms per upload
    here). Same rules as requests: $NO_PROXY, $REQUESTS_CA_BUNDLE / $CURL_CA_BUNDLE only when verify is True."""
    from requests.utils import get_environ_proxies, get_netrc_auth

    if verify is True:
        verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    return get_environ_proxies(base_url), verify, get_netrc_auth(base_url)


class OrthancGateway:
    """REST calls to one Orthanc server; every method raises typed errors naming the server and the resource."""

    def __init__(self, protocol: str = "http", host: str = "localhost", port: int = 8042, path: str | None = None,
                 name: str = "OrthancGateway", user: str | None = None, password: str | None = None,
                 aet: str = "ORTHANC", verify: bool | str = True, timeout: float = 30.0, pool_size: int = 10,
                 retries: int = 3, backoff: float = 0.2, upload_retries: int = 8) -> None:
        self.name, self.aet, self.timeout, self.host = name, aet, timeout, host
        base = f"{protocol}://{host}:{port}"
        self.base_url = f"{base}/{path.strip('/')}" if path else base
        self.user = user
        self.retries, self.backoff, self.upload_retries = retries, backoff, upload_retries
        self.max_response = MAX_RESPONSE
        self._base_ok = False  # /system answered once: a later 404 is an absent item, not a wrong URL
        self.session = requests.Session()
        self.upload_session = requests.Session()
        self.once_session = requests.Session()  # no retries: inside diana_core.delivery.single_attempt (the watcher)
        proxies, verify, netrc = _environment(self.base_url, verify)
        for session in (self.session, self.upload_session, self.once_session):
            session.trust_env = False  # the environment was read once, above
            session.proxies.update(proxies)
            session.verify = verify
            if user is not None:
                session.auth = (user, password or "")
            elif netrc is not None:
                session.auth = netrc
        self._prepared = PreparedRequests()
        self.pool_size = 0
        self.resize_pool(pool_size)

    # --- plumbing ------------------------------------------------------------------------------
    def resize_pool(self, pool_size: int) -> None:
        """Mount an adapter whose connection pool holds ``pool_size`` connections (match the worker count)."""
        retry = Retry(total=self.retries, connect=self.retries, read=self.retries, status=self.retries,
                      backoff_factor=self.backoff, status_forcelist=(502, 503, 504), allowed_methods=IDEMPOTENT,
                      raise_on_status=False, respect_retry_after_header=True)
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # ~20 s of backoff (0, 0.4, 0.8, 1.6, 3.2, then 5 s apart): long enough for an Orthanc restart
        upload = Retry(total=self.upload_retries, connect=self.upload_retries, read=self.upload_retries,
                       status=self.upload_retries, other=self.upload_retries, backoff_factor=self.backoff,
                       backoff_max=5.0, status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"POST"}),
                       raise_on_status=False, respect_retry_after_header=True)
        uploads = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=upload)
        self.upload_session.mount("http://", uploads)
        self.upload_session.mount("https://", uploads)
        once = HTTPAdapter(pool_connections=1, pool_maxsize=max(1, pool_size), max_retries=0)
        self.once_session.mount("http://", once)
        self.once_session.mount("https://", once)
        self.pool_size = pool_size

    def close(self) -> None:
        self.session.close()
        self.upload_session.close()
        self.once_session.close()

    def url(self, route: str) -> str:
        return f"{self.base_url}/{route.lstrip('/')}"

    def _send(self, session: requests.Session, method: str, route: str, idempotent: bool, streamed: bool,
              what: str, **kwargs: Any) -> requests.Response:
        """One request; an idempotent one whose connection broke after urllib3's retries (a server killed while it
        answered: ChunkedEncodingError, a reset while reading) is sent again up to 3 times (0.5, 1, 2 s apart)."""
        for delay in (*(0.5, 1.0, 2.0)[: self.retries], None):
            try:
                resp = self._prepared.send(session, method, self.url(route), kwargs)  # uploads: prepared once
                if not streamed:
                    self._read_bounded(resp, method, what)
                return resp
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                if not idempotent or delay is None:
                    raise
                time.sleep(delay)
        raise AssertionError("unreachable")

    def request(self, method: str, route: str, *, what: str | None = None, idempotent: bool = False,
                **kwargs: Any) -> requests.Response:
        """Send one request; map failures to typed errors naming this server and ``what`` (default: the route).
        ``idempotent`` marks a POST safe to repeat (an upload): it is retried like a GET."""
        what = what or route.split("?")[0]
        kwargs.setdefault("timeout", self.timeout)
        streamed = bool(kwargs.pop("stream", False))
        session = self.upload_session if idempotent else self.session
        budget = attempt_budget()
        if budget is not None:  # the caller retries on its own schedule: one try, connecting within the budget
            session, resend = self.once_session, False
            timeout = kwargs["timeout"]
            read = timeout[1] if isinstance(timeout, tuple) else timeout
            kwargs["timeout"] = (min(budget, read or budget), read)
        else:
            resend = idempotent
        kwargs.setdefault("verify", self.session.verify)
        try:
            resp = self._send(session, method, route, resend, streamed, what, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            why = why_unreachable(exc, self.host)  # e.g. "connection refused", "DNS lookup of pacs failed", TLS
            raise EndpointUnavailable(f"{self.name} at {self.base_url} is unreachable: {why} ({type(exc).__name__}) "
                                      f"during {method} {what}", reason=why) from None
        except requests.RequestException as exc:
            raise EndpointUnavailable(f"{self.name} at {self.base_url}: {type(exc).__name__} during {method} {what}") from None
        if resp.status_code < 400:
            return resp
        status = resp.status_code
        if status in (401, 403):
            raise AuthenticationError(f"{self.name} at {self.base_url} refused the credentials of user "
                                      f"{self.user!r} (HTTP {status})")
        if status == 404:
            if not self._base_ok and route != "system":
                self._check_base_url(method, what)
            raise NotFound(f"{self.name}: {what} not found")
        detail = self._detail(resp)
        if status == 429 or (status >= 500 and (method in IDEMPOTENT or idempotent)):  # 429: busy, whatever the method
            raise EndpointUnavailable(f"{self.name} at {self.base_url}: HTTP {status} on {method} {what}{detail}")
        raise OrthancRequestError(f"{self.name}: HTTP {status} on {method} {what}{detail}", status)

    def _read_bounded(self, resp: requests.Response, method: str, what: str) -> None:
        """Read the body into ``resp`` unless it exceeds ``max_response`` (announced or streamed): a runaway or
        hostile answer must not exhaust memory."""
        read_bounded(resp, f"{self.name} at {self.base_url}", f"{method} {what}", self.max_response)

    def _check_base_url(self, method: str, what: str) -> None:
        """A 404: is it the item, or is nothing Orthanc at this URL? (GET /system answers on every Orthanc.)"""
        try:
            self.request("GET", "system")
        except NotFound:
            raise ConfigError(f"{self.name}: {self.base_url} answers 404 even on /system ({method} {what}): wrong URL "
                              "(check host, port and path)") from None
        self._base_ok = True

    @staticmethod
    def _detail(resp: requests.Response) -> str:
        try:
            body = resp.json()
        except ValueError:
            return ""
        if isinstance(body, Mapping):
            parts = [str(body[k]) for k in ("Message", "Details", "OrthancError") if body.get(k)]
            return f": {'; '.join(parts)}" if parts else ""
        return ""

    def _json(self, method: str, route: str, body: Any = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs["data"] = body if isinstance(body, (str, bytes)) else json.dumps(body)
        resp = self.request(method, route, **kwargs)
        if not resp.content:
            return None
        kind = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind == "text/html":
            raise EndpointUnavailable(f"{self.name} at {self.base_url} answered an HTML page to {method} "
                                      f"{kwargs.get('what') or route.split('?')[0]}, not Orthanc's JSON: a login page "
                                      "or a proxy in the way?")
        try:
            return resp.json()
        except ValueError:
            if kind.endswith("json"):
                raise EndpointUnavailable(f"{self.name} at {self.base_url}: malformed JSON in the answer to {method} "
                                          f"{kwargs.get('what') or route.split('?')[0]}") from None
            return resp.text

    # --- the reference's gateway methods ---------------------------------------------------------
    def system(self) -> dict[str, Any]:
        """GET /system (name, version, AET)."""
        return self._json("GET", "system")

    def anonymize(self, oid: str, level: DicomLevel | str, replacement_map: Mapping[str, Any] | None = None,
                  keep: list[str] | None = None, remove: list[str] | None = None) -> dict[str, Any]:
        """POST {level}/{oid}/anonymize with Replace + Force, private tags dropped; returns Orthanc's answer (ID)."""
        lvl = _lvl(level)
        body: dict[str, Any] = {"Replace": dict(replacement_map or {}), "Force": True, "KeepPrivateTags": False}
        if keep:
            body["Keep"] = list(keep)
        if remove:
            body["Remove"] = list(remove)
        return self._json("POST", f"{lvl}/{oid}/anonymize", body, what=f"{lvl} {oid}")

    def anonymize_instance(self, oid: str, replacement_map: Mapping[str, Any] | None = None) -> bytes:
        """POST instances/{oid}/anonymize: Orthanc answers the anonymized DICOM file (it stores nothing)."""
        body = {"Replace": dict(replacement_map or {}), "Force": True, "KeepPrivateTags": False}
        resp = self.request("POST", f"instances/{oid}/anonymize", data=json.dumps(body), what=f"instances {oid}")
        return bytes(resp.content)

    def modify(self, oid: str, level: DicomLevel | str, replacement_map: Mapping[str, Any],
               remove: list[str] | None = None) -> dict[str, Any]:
        """POST {level}/{oid}/modify with Replace (+ Force, needed to change UIDs or PatientID)."""
        lvl = _lvl(level)
        body: dict[str, Any] = {"Replace": dict(replacement_map), "Force": True}
        if remove:
            body["Remove"] = list(remove)
        if lvl == DicomLevel.INSTANCES:
            # instance-level modify returns the modified file; keep it in Orthanc instead
            resp = self.request("POST", f"{lvl}/{oid}/modify", data=json.dumps(body), what=f"{lvl} {oid}")
            return self.put(resp.content)
        return self._json("POST", f"{lvl}/{oid}/modify", body, what=f"{lvl} {oid}")

    def changes(self, current: int = 0, limit: int = 1000) -> dict[str, Any]:
        """GET changes?since=&limit= -> {Changes, Done, Last}."""
        return self._json("GET", f"changes?since={int(current)}&limit={int(limit)}")

    def last_change(self) -> int:
        """Sequence number of the newest change (0 when none)."""
        return int(self._json("GET", "changes?last").get("Last", 0))

    def delete(self, oid: str, level: DicomLevel | str) -> None:
        """DELETE {level}/{oid}; NotFound when absent."""
        lvl = _lvl(level)
        self.request("DELETE", f"{lvl}/{oid}", what=f"{lvl} {oid}")

    def find(self, query: Mapping[str, Any], level: DicomLevel | str = DicomLevel.STUDIES,
             expand: bool = False, limit: int | None = None) -> list[Any]:
        """POST tools/find {Level, Query}: ids (or expanded resources) of local matches. ``query`` is a tag mapping
        or, as the original passed it, a whole body {"Level": ..., "Query": {...}[, "Expand", "Limit"]}."""
        query, level, extra = _body_parts(query, level, ("Expand", "Limit"))
        body: dict[str, Any] = {"Level": _lvl(level).dicom_name, "Query": query, "Expand": expand, **extra}
        if limit:
            body["Limit"] = int(limit)
        return self._json("POST", "tools/find", body)

    def get(self, oid: str, level: DicomLevel | str = DicomLevel.STUDIES, view: str = "tags") -> Any:
        """view: meta (/{level}/{id}), metakv (all metadata), tags (simplified; shared-tags above instances), file."""
        lvl, what = _lvl(level), f"{_lvl(level)} {oid}"
        if view == "meta":
            return self._json("GET", f"{lvl}/{oid}", what=what)
        if view == "metakv":
            return self.get_metadata(oid, lvl)
        if view == "tags":
            route = f"{lvl}/{oid}/tags?simplify" if lvl == DicomLevel.INSTANCES else f"{lvl}/{oid}/shared-tags?simplify"
            return self._json("GET", route, what=what)
        if view == "file":
            if lvl != DicomLevel.INSTANCES:
                raise OrthancRequestError(f"{self.name}: view 'file' is for instances; use get_archive for {what}")
            return self.request("GET", f"{lvl}/{oid}/file", what=what).content
        raise OrthancRequestError(f"{self.name}: unknown view {view!r} (meta, metakv, tags, file)")

    def get_archive(self, oid: str, level: DicomLevel | str, dest: str | os.PathLike[str] | IO[bytes]) -> int:
        """Stream GET {level}/{oid}/archive (zip) to a path or binary file object; returns the bytes written."""
        lvl = _lvl(level)
        return self._stream(f"{lvl}/{oid}/archive", f"{lvl} {oid}", dest)

    def get_file(self, oid: str, dest: str | os.PathLike[str] | IO[bytes]) -> int:
        """Stream GET instances/{oid}/file to a path or binary file object; returns the bytes written."""
        return self._stream(f"instances/{oid}/file", f"instances {oid}", dest)

    def _stream(self, route: str, what: str, dest: str | os.PathLike[str] | IO[bytes]) -> int:
        # iter_content undoes any gzip transfer encoding; a path is written to ".part" and renamed when complete
        resp = self.request("GET", route, what=what, stream=True)
        written = 0
        with resp:
            if isinstance(dest, (str, os.PathLike)):
                tmp = f"{os.fspath(dest)}.part"
                with open(tmp, "wb") as fh:
                    for chunk in resp.iter_content(CHUNK):
                        written += fh.write(chunk)
                os.replace(tmp, dest)
            else:
                for chunk in resp.iter_content(CHUNK):
                    written += dest.write(chunk) or len(chunk)
        return written

    def get_metadata(self, oid: str, level: DicomLevel | str, key: str | None = None) -> Any:
        """One metadata value (text), or with no key a dict of all of them."""
        lvl, what = _lvl(level), f"{_lvl(level)} {oid}"
        if key is not None:
            return self.request("GET", f"{lvl}/{oid}/metadata/{key}", what=f"{what} metadata {key}").text
        return self._json("GET", f"{lvl}/{oid}/metadata?expand", what=what)

    def put_metadata(self, oid: str, level: DicomLevel | str, key: str, value: str) -> None:
        """PUT {level}/{oid}/metadata/{key} (user keys must be declared in Orthanc's UserMetadata, or be >= 1024)."""
        lvl = _lvl(level)
        self.request("PUT", f"{lvl}/{oid}/metadata/{key}", data=str(value).encode(), what=f"{lvl} {oid} metadata {key}")

    def inventory(self, level: DicomLevel | str = DicomLevel.STUDIES) -> list[str]:
        """Ids of every item at ``level``."""
        return self._json("GET", str(_lvl(level)))

    def put(self, file: bytes | str | os.PathLike[str] | IO[bytes],
            content_type: str = "application/dicom") -> Any:
        """POST instances (raw DICOM bytes, a path or a file object) -> {ID, Status: Success|AlreadyStored, ...}.

        With ``content_type="application/zip"`` Orthanc unpacks the archive and answers a list of such dicts.
        """
        if isinstance(file, (str, os.PathLike)):
            with open(file, "rb") as fh:
                data = fh.read()
        elif isinstance(file, (bytes, bytearray, memoryview)):
            data = bytes(file)
        else:
            data = file.read()
        try:
            return self._json("POST", "instances", data, headers={"Content-Type": content_type}, idempotent=True)
        except OrthancRequestError as exc:
            if exc.status == 400:
                raise InvalidDicom(f"{self.name}: Orthanc rejected the file as DICOM{str(exc).partition(' instances')[2]}") from None
            raise

    def recho(self, domain: str) -> bool:
        """C-ECHO the modality ``domain``: True when it answers, False on a DICOM failure."""
        try:
            self._json("POST", f"modalities/{domain}/echo", {}, what=f"modality {domain} echo")
        except OrthancRequestError:
            return False
        return True

    def reset(self) -> None:
        """POST tools/reset (Orthanc reloads its configuration; it does not delete data)."""
        self._json("POST", "tools/reset", "")

    def rfind(self, query: Mapping[str, Any], domain: str, level: DicomLevel | str = DicomLevel.STUDIES,
              retrieve: bool = False, target_aet: str | None = None) -> list[dict[str, Any]]:
        """C-FIND on modality ``domain``; answers as simplified tag dicts; ``retrieve`` C-MOVEs each to ``target_aet``."""
        qid = self.rquery(query, domain, level)
        answers = self.query_answers(qid)
        if retrieve:
            for i in range(len(answers)):
                self.retrieve(qid, i, target_aet or self.aet)
        return answers

    def rquery(self, query: Mapping[str, Any], domain: str, level: DicomLevel | str = DicomLevel.STUDIES) -> str:
        """POST modalities/{domain}/query (C-FIND); returns the query id whose answers Orthanc keeps. ``query``: a
        tag mapping or a body {"Level": ..., "Query": {...}} as the original passed it."""
        query, level, extra = _body_parts(query, level, ("Normalize",))
        body = {"Level": _lvl(level).dicom_name, "Query": query, **extra}
        # safe to repeat (a second query resource, nothing changes on the remote): retried like a GET
        return str(self._json("POST", f"modalities/{domain}/query", body, what=f"modality {domain} query",
                              idempotent=True)["ID"])

    def query_answers(self, query_id: str) -> list[dict[str, Any]]:
        """The answers of a C-FIND query, as simplified tag dicts (in answer order)."""
        n = len(self._json("GET", f"queries/{query_id}/answers"))
        return [self._json("GET", f"queries/{query_id}/answers/{i}/content?simplify") for i in range(n)]

    def retrieve(self, query_id: str, answer: int, target_aet: str, timeout: float | None = None,
                 progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """C-MOVE one answer of a query to ``target_aet`` as an Orthanc job: submit (``"Synchronous": false``),
        then poll ``/jobs/{id}`` until it ends; ``timeout`` bounds the whole move, not one HTTP request."""
        body = {"TargetAet": target_aet, "Synchronous": False}
        job = self._json("POST", f"queries/{query_id}/answers/{answer}/retrieve", body,
                         what=f"query {query_id} answer {answer} retrieve")
        return self.wait_job(str(job["ID"]), timeout=timeout, progress=progress,
                             what=f"C-MOVE of query {query_id} answer {answer} to {target_aet}")

    def move(self, domain: str, level: DicomLevel | str, keys: Mapping[str, str], target_aet: str) -> dict[str, Any]:
        """POST modalities/{domain}/move: a synchronous C-MOVE of the items matching ``keys`` to ``target_aet``."""
        body = {"Level": _lvl(level).dicom_name, "Resources": [dict(keys)], "TargetAet": target_aet,
                "Synchronous": True}
        return self._json("POST", f"modalities/{domain}/move", body, what=f"modality {domain} move")  # type: ignore[no-any-return]

    def wait_job(self, job_id: str, timeout: float | None = None, progress: Callable[[int], None] | None = None,
                 what: str = "job") -> dict[str, Any]:
        """Poll ``/jobs/{id}`` (backing off to 1 s) until Success; OrthancRequestError on Failure; after ``timeout``
        seconds (default 3600) the job is cancelled and EndpointUnavailable raised. ``progress`` gets 0-100."""
        limit = 3600.0 if timeout is None else timeout
        deadline = time.monotonic() + limit
        delay, last = 0.02, -1
        while True:
            job = self._json("GET", f"jobs/{job_id}", what=f"job {job_id}")
            percent = int(job.get("Progress", 0))
            if progress is not None and percent != last:
                progress(percent)
                last = percent
            state = job.get("State")
            if state == "Success":
                if progress is not None and last != 100:
                    progress(100)
                return job  # type: ignore[no-any-return]
            if state == "Failure":
                why = job.get("ErrorDetails") or job.get("ErrorDescription") or "failed"
                raise OrthancRequestError(f"{self.name}: {what} failed (job {job_id}): {why}")
            if time.monotonic() > deadline:
                with contextlib.suppress(DianaError):
                    self._json("POST", f"jobs/{job_id}/cancel", "")
                raise EndpointUnavailable(f"{self.name}: {what} did not finish within {limit:g} s (job {job_id} at "
                                          f"{percent}%, cancelled); raise retrieve_timeout for larger studies")
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)

    def send(self, oid: str | list[str], dest: str, dest_type: str = "peers") -> dict[str, Any]:
        """POST {peers|modalities}/{dest}/store: push resources (any level) to an Orthanc peer or DICOM modality."""
        if dest_type not in ("peers", "modalities"):
            raise OrthancRequestError(f"{self.name}: dest_type must be 'peers' or 'modalities', not {dest_type!r}")
        ids = [oid] if isinstance(oid, str) else list(oid)
        body = {"Resources": ids, "Synchronous": True}
        return self._json("POST", f"{dest_type}/{dest}/store", body, what=f"{dest_type} {dest} store")

    def statistics(self) -> dict[str, Any]:
        """GET statistics (counts and disk usage)."""
        return self._json("GET", "statistics")

    def put_attachment(self, oid: str, level: DicomLevel | str, name: str | int, data: bytes | str) -> None:
        """PUT {level}/{oid}/attachments/{name} (e.g. 9999, the Osimis viewer's annotations)."""
        lvl = _lvl(level)
        self.request("PUT", f"{lvl}/{oid}/attachments/{name}", data=data if isinstance(data, bytes) else data.encode(),
                     what=f"{lvl} {oid} attachment {name}")

    def get_attachment(self, oid: str, level: DicomLevel | str, name: str | int) -> Any:
        """GET {level}/{oid}/attachments/{name}/data (parsed JSON when it is JSON)."""
        lvl = _lvl(level)
        resp = self.request("GET", f"{lvl}/{oid}/attachments/{name}/data", what=f"{lvl} {oid} attachment {name}")
        try:
            return resp.json()
        except ValueError:
            return resp.content
