"""OrthancGateway: Diana-agnostic REST client for Orthanc (no Dixels), used by the Orthanc endpoints.

The REST calls of the reference's gateway (find, get, put, anonymize, modify, C-FIND/C-MOVE through Orthanc,
jobs...). Sessions, retries and the translation of HTTP failures into typed Diana errors are ``rest.OrthancRest``'s.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import IO, Any

from diana_core.dicom import DicomLevel, orthanc_id
from diana_core.errors import DianaError, EndpointUnavailable, InvalidDicom, ValidationError
from diana_orthanc.rest import CHUNK, OrthancRequestError, OrthancRest

logger = logging.getLogger(__name__)

__all__ = ["OrthancGateway", "OrthancRequestError", "orthanc_id"]


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


class OrthancGateway(OrthancRest):
    """REST calls to one Orthanc server; every method raises typed errors naming the server and the resource."""

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
