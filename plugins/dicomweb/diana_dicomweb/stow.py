"""STOW-RS: instances gathered from files, folders, zips, bytes or Dixels, batched into multipart requests of
bounded size, and the per-instance outcome read from the server's answer (PS3.18 Store Instances Response, JSON or XML): anything else is an error, never a success.
"""

from __future__ import annotations

import json
import logging
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, NamedTuple

from attrs import define, field

from diana_core.bounded import read_bounded
from diana_core.dixel import Dixel
from diana_core.errors import AuthenticationError, ConfigError, ValidationError
from diana_core.ports import BulkResult
from diana_dicomweb.errors import UnexpectedResponse, http_error, translated, unexpected
from diana_dicomweb.multipart import stow_body

logger = logging.getLogger(__name__)

REFERENCED_SOP_SEQUENCE = "00081199"
FAILED_SOP_SEQUENCE = "00081198"
REFERENCED_SOP_INSTANCE_UID = "00081155"
FAILURE_REASON = "00081197"
RETRIEVE_URL = "00081190"


@define
class Part:
    """One instance to send: a label for failure reports (file name, never PHI) and a way to read its bytes."""

    label: str
    data: bytes | None = field(default=None, repr=False)
    path: str | None = None
    size: int = 0

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        return Path(self.path).read_bytes()


def _is_dicom_file(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(132)[128:] == b"DICM"
    except OSError:
        return False


def _zip_parts(path: str) -> Iterator[Part]:
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if member.is_dir() or member.filename.upper().endswith("DICOMDIR"):
                continue
            data = archive.read(member)
            if data[128:132] == b"DICM":
                yield Part(label=f"{Path(path).name}:{member.filename}", data=data, size=len(data))


def _path_parts(path: Path) -> Iterator[Part]:
    if path.is_dir():
        ignored = 0
        for p in sorted(path.rglob("*")):
            if not p.is_file():
                continue
            if zipfile.is_zipfile(p):
                yield from _zip_parts(str(p))
            elif _is_dicom_file(p):
                yield Part(label=p.name, path=str(p), size=p.stat().st_size)
            else:
                ignored += 1
        if ignored:
            logger.info("ignored %d files that are not DICOM Part 10 files", ignored)
    elif path.is_file():
        if path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
            yield from _zip_parts(str(path))
        else:
            yield Part(label=path.name, path=str(path), size=path.stat().st_size)
    else:
        raise ValidationError(f"no such file or folder: {path.name}")


def iter_parts(items: Iterable[Any]) -> Iterator[Part]:
    """Flatten Dixels (file bytes or FileName), paths (files, folders, zips) and bytes into Parts, lazily."""
    for n, item in enumerate(items):
        if isinstance(item, Dixel):
            if item.file is not None:
                yield Part(label=item.fn and Path(item.fn).name or str(item.summary()["id"]), data=item.file,
                           size=len(item.file))
            elif item.fn:
                yield from _path_parts(Path(item.fn))
            else:
                raise ValidationError(f"item {item.summary()['id']} has no file bytes and no FileName to store")
        elif isinstance(item, (bytes, bytearray, memoryview)):
            data = bytes(item)
            yield Part(label=f"<bytes #{n}>", data=data, size=len(data))
        elif isinstance(item, (str, os.PathLike)):
            yield from _path_parts(Path(item))
        else:
            raise ValidationError(f"cannot store a {type(item).__name__}: give files, folders, zips, bytes or Dixels")


def batches(parts: Iterable[Part], max_bytes: int, max_count: int) -> Iterator[list[Part]]:
    """Group parts into batches of at most ``max_count`` parts and ``max_bytes`` (a bigger single part goes alone)."""
    batch: list[Part] = []
    size = 0
    for part in parts:
        if batch and (len(batch) >= max_count or size + part.size > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(part)
        size += part.size
    if batch:
        yield batch


def _values(dataset: dict[str, Any], tag: str) -> list[Any]:
    return list((dataset.get(tag) or {}).get("Value") or [])


_STUDY_IN_URL = re.compile(r"/studies/([0-9.]+)(?:/|$)")
STOW_MEDIA = ("application/dicom+json", "application/json", "application/dicom+xml")


@define
class StoreAnswer:
    """What a STOW-RS answer says: SOP UIDs stored (with their study UID when the RetrieveURL names it), failed
    ones with the reason, and whether it held either sequence at all (a DICOM dataset that does not is no answer)."""

    stored: list[str] = field(factory=list)
    failed: list[tuple[str, str]] = field(factory=list)
    studies: dict[str, str] = field(factory=dict)
    sequences: bool = False


def _reason(codes: list[Any]) -> str:
    return f"failure reason 0x{int(codes[0]):04X}" if codes else "refused by the server"


def _from_json(answer: Any) -> StoreAnswer | None:
    if isinstance(answer, list):
        answer = answer[0] if answer else {}
    if not isinstance(answer, dict):
        return None
    out = StoreAnswer(sequences=REFERENCED_SOP_SEQUENCE in answer or FAILED_SOP_SEQUENCE in answer)
    for item in _values(answer, REFERENCED_SOP_SEQUENCE):
        uids = _values(item, REFERENCED_SOP_INSTANCE_UID)
        if uids:
            out.stored.append(str(uids[0]))
            study = _STUDY_IN_URL.search(str((_values(item, RETRIEVE_URL) or [""])[0]))
            if study:
                out.studies[str(uids[0])] = study.group(1)
    for item in _values(answer, FAILED_SOP_SEQUENCE):
        uids = _values(item, REFERENCED_SOP_INSTANCE_UID)
        out.failed.append((str(uids[0]) if uids else "?", _reason(_values(item, FAILURE_REASON))))
    return out


def _from_xml(content: bytes) -> StoreAnswer | None:
    """PS3.19 Native DICOM Model: the same sequences as the JSON answer, addressed by tag."""
    import xml.etree.ElementTree as ET

    if b"<!doctype" in content.lower():  # what defusedxml's forbid_dtd does: without a DTD no entity can expand
        return None
    try:
        root = ET.fromstring(content)  # noqa: S314 - DTDs refused above: no entities, no external references
    except ET.ParseError:
        return None
    if not root.tag.endswith("NativeDicomModel"):
        return None

    def attr(node: Any, tag: str) -> Any:
        return next((a for a in node if a.tag.endswith("DicomAttribute") and a.get("tag", "").upper() == tag), None)

    def values(node: Any, tag: str) -> list[str]:
        found = attr(node, tag)
        return [v.text or "" for v in found if v.tag.endswith("Value")] if found is not None else []

    def items(tag: str) -> list[Any]:
        found = attr(root, tag)
        return [i for i in found if i.tag.endswith("Item")] if found is not None else []

    out = StoreAnswer(sequences=attr(root, REFERENCED_SOP_SEQUENCE) is not None
                      or attr(root, FAILED_SOP_SEQUENCE) is not None)
    for item in items(REFERENCED_SOP_SEQUENCE):
        uids = values(item, REFERENCED_SOP_INSTANCE_UID)
        if uids:
            out.stored.append(uids[0])
            study = _STUDY_IN_URL.search((values(item, RETRIEVE_URL) or [""])[0])
            if study:
                out.studies[uids[0]] = study.group(1)
    for item in items(FAILED_SOP_SEQUENCE):
        uids = values(item, REFERENCED_SOP_INSTANCE_UID)
        out.failed.append((uids[0] if uids else "?", _reason(values(item, FAILURE_REASON))))
    return out


def read_response(content: bytes, content_type: str) -> StoreAnswer | None:
    """The STOW answer in a DICOM JSON or XML body; None when the body is neither."""
    if not content:
        return None
    media = content_type.split(";")[0].strip().lower()
    if media == "application/dicom+xml":
        return _from_xml(content)
    # Orthanc answers a partial failure (HTTP 400) with DICOM JSON but no Content-Type at all
    if media not in ("application/dicom+json", "application/json") and not (
            not media and content.lstrip()[:1] in (b"{", b"[")):
        return None
    try:
        return _from_json(json.loads(content))
    except ValueError:
        return None


class Outcome(NamedTuple):
    """What one STOW request came to."""

    stored: list[str]  # SOP UIDs the answer lists as stored
    failed: list[tuple[str, str]]  # (SOP UID or file label, reason)
    studies: dict[str, str] = {}  # noqa: RUF012 - read only: SOP UID -> study UID, from the RetrieveURLs


WANTED = "a STOW-RS answer (application/dicom+json or +xml with ReferencedSOPSequence)"


def post_batch(session: Any, url: str, batch: list[Part], where: str, timeout: float) -> Outcome:
    """One STOW-RS request carrying ``batch``; the per-instance outcome from the server's answer.

    Success is only what the answer lists: a 2xx that is not a DICOM store answer (an SSO login page, a redirect,
    an empty body) raises ``UnexpectedResponse`` naming what came back.
    """
    datas: list[bytes] = []
    sent: list[Part] = []
    unread: list[tuple[str, str]] = []
    for part in batch:
        try:
            datas.append(part.read())
            sent.append(part)
        except OSError as exc:
            unread.append((part.label, f"cannot read: {exc.strerror}"))
    if not datas:
        return Outcome([], unread)
    body, content_type = stow_body(datas)
    what = f"store {len(datas)} instances"
    with translated(where, what):
        response = session.post(url, data=body, timeout=timeout, allow_redirects=False, stream=True,
                                headers={"Content-Type": content_type, "Accept": "application/dicom+json"})
        content = read_bounded(response, where, f"store {len(datas)} instances")
    status = response.status_code
    if status in (401, 403):
        raise http_error(where, "store", status)
    if status == 404:
        raise ConfigError(f"{where}: HTTP 404 on the STOW-RS path: wrong URL (url must be the DICOMweb base)")
    if 300 <= status < 400:
        raise unexpected(where, what, response, WANTED)
    answer = read_response(content, response.headers.get("Content-Type", ""))
    if answer is None or (status < 300 and not answer.sequences):
        if status < 300:
            raise unexpected(where, what, response, WANTED)
        error = http_error(where, what, status)
        return Outcome([], unread + [(part.label, str(error)) for part in sent])
    ok, bad = answer.stored, answer.failed
    missing = len(datas) - len(ok) - len(bad)
    if missing > 0:  # the server did not account for some parts: name the batch's first file
        bad = bad + [(sent[0].label, f"not stored, no reason given (HTTP {status})")] * missing
    return Outcome(ok, unread + bad, answer.studies)


def store(items: Iterable[Any], post: Callable[[list[Part]], Outcome], workers: int, max_bytes: int, max_count: int,
          progress: Callable[[int, int | None], None] | None = None) -> tuple[BulkResult, list[str], dict[str, str]]:
    """Send ``items`` in batches with ``workers`` requests in flight (at most 2 batches per worker in memory);
    (counts, stored SOP UIDs, their study UIDs where the server named them)."""
    stored: list[str] = []
    failed: list[tuple[str, str]] = []
    studies: dict[str, str] = {}
    pending: set[Future] = set()

    def collect(futures: Iterable[Future]) -> None:
        for fut in futures:
            pending.discard(fut)
            # AuthenticationError, UnexpectedResponse propagate: every batch would fail the same way
            ok, bad, where = fut.result()
            stored.extend(ok)
            failed.extend(bad)
            studies.update(where)
            if progress:
                progress(len(stored) + len(failed), None)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dicomweb-stow") as pool:
            for batch in batches(iter_parts(items), max_bytes, max_count):
                if len(pending) >= workers * 2:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    collect(done)
                pending.add(pool.submit(post, batch))
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                collect(done)
    except (AuthenticationError, UnexpectedResponse):
        for fut in pending:
            fut.cancel()
        raise
    return BulkResult(done=len(stored), failed=failed), stored, studies
