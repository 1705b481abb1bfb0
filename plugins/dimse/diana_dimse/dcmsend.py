"""C-STORE with dcmtk's ``dcmsend`` (the DicomNode's dcmtk engine): batches of files in one run (one association
unless they need more than 128 presentation contexts), every instance's DIMSE status read from dcmsend's report
file, never its exit code alone (dcmsend exits 0 when some instances failed). Bytes are written to a private
temporary folder first; files on disk are sent as they are.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from diana_core.delivery import attempt_budget
from diana_core.errors import DianaError, EndpointUnavailable, InvalidDicom
from diana_core.ports import BulkResult, Progress
from diana_dimse.engine import DCMTK_ENV, dcmtk_tool
from diana_dimse.errors import AssociationRejected, DimseStatusError, NodeOutOfResources, is_success_or_warning
from diana_dimse.files import Payload, all_payloads

logger = logging.getLogger(__name__)

Result = tuple[str, str, DianaError | None]  # (label, SOP Instance UID, None or why it failed)
BATCH = 500  # files per dcmsend run (one association each; the command line stays far below ARG_MAX)
_STATUS = re.compile(r"0x([0-9a-fA-F]{4})\s*(?:\((.*)\))?")


def parse_report(text: str) -> dict[str, tuple[str, int | None, str]]:
    """dcmsend's report file: {file name: (SOP Instance UID, status code or None if not sent, status text)}."""
    out: dict[str, tuple[str, int | None, str]] = {}
    for block in text.split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields[key.strip()] = value.strip()
        if "Filename" not in fields or "Number" not in fields:
            continue
        match = _STATUS.match(fields.get("DIMSE Status", ""))
        code = int(match.group(1), 16) if match else None
        text_status = (match.group(2) or "") if match else fields.get("DIMSE Status", "") or "not sent"
        out[fields["Filename"]] = (fields.get("SOP Instance", ""), code, text_status)
    return out


class DcmSend:
    """Sends files to one DicomNode with dcmsend (``node`` gives host, port, AE titles, timeout)."""

    def __init__(self, node: Any) -> None:
        self.node = node
        self.tool = dcmtk_tool("dcmsend")
        if self.tool is None:
            raise EndpointUnavailable(f"DicomNode {node.name!r}: engine dcmtk: /usr/bin/dcmsend not found")

    def _args(self, report: str) -> list[str]:
        budget = attempt_budget()
        timeout = max(1, int(min(self.node.timeout, budget) if budget else self.node.timeout))
        return [self.tool or "dcmsend", "-nh", "-nuc", "+f", "-aet", self.node.calling_aet, "-aec", self.node.aet,
                "-to", str(timeout), "-ta", str(timeout), "-td", str(timeout), "+crf", report]

    def run(self, files: list[tuple[str, str]]) -> list[Result]:
        """Send ``files`` ([(label, path)]) in one dcmsend run: [(label, SOP UID, None or the typed failure)]."""
        errs = self.node.errors
        with tempfile.TemporaryDirectory(prefix="diana-dcmsend-") as tmp:
            report = os.path.join(tmp, "report.txt")
            cmd = [*self._args(report), self.node.host, str(self.node.port), *(p for _, p in files)]
            proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                                  env={**os.environ, **DCMTK_ENV}, check=False)
            text = open(report, encoding="utf-8", errors="replace").read() if os.path.exists(report) else ""
        results = parse_report(text)
        if not results:
            raise self._whole_run_failed(proc, len(files))
        out: list[Result] = []
        for label, path in files:
            sop, code, meaning = results.get(path, ("", None, ""))
            if code is None and not sop:
                why = _line_about(proc.stderr, path) or "dcmsend could not read it"
                out.append((label, sop, InvalidDicom(f"{errs.where}: C-STORE: {label} is not readable DICOM ({why})")))
            elif code is None:  # readable, but the association ended before it went out (see send)
                out.append((label, sop, NOT_SENT))
            elif is_success_or_warning("C-STORE", code):
                out.append((label, sop, None))
            else:
                text = f"{errs.where}: C-STORE of instance {sop} failed with status 0x{code:04X} ({meaning})"
                kind = NodeOutOfResources if code & 0xFF00 == 0xA700 else DimseStatusError  # A7xx: try again later
                out.append((label, sop, kind(text, code)))
        # after an unanswered instance dcmsend keeps sending on the same association, and a late answer to an
        # earlier request can be taken for a later one's: trust nothing after the first unanswered instance
        first = next((i for i, (_, _, why) in enumerate(out) if why is NOT_SENT), None)
        if first is not None:
            out[first:] = [(label, sop, NOT_SENT if why is None else why) for label, sop, why in out[first:]]
        return out

    def _whole_run_failed(self, proc: subprocess.CompletedProcess, n: int) -> DianaError:
        """No report: the association failed (or no file was readable); a typed error naming why."""
        errs = self.node.errors
        tail = " ".join(line.strip() for line in proc.stderr.splitlines()[-3:])[-300:]
        low = proc.stderr.lower()
        if "association rejected" in low or "rejected" in low and "association" in low:
            transient = "transient" in low
            text = (f"{errs.where}: association for C-STORE rejected by {errs.address} (calling AE "
                    f"{errs.calling!r}, called AE {errs.called!r}): {tail}")
            if transient:
                from diana_dimse.errors import NodeBusy

                return NodeBusy(text)
            return AssociationRejected(text)
        if "no acceptable presentation contexts" in low or "no presentation context" in low:
            return DimseStatusError(f"{errs.where}: C-STORE: the node accepts none of the presentation contexts "
                                    f"of these {n} file(s): {tail}", 0x0122)
        if "cannot add" in low and proc.returncode in (0, 20, 21, 22, 23):
            return DimseStatusError(f"{errs.where}: C-STORE: no readable DICOM among {n} file(s): {tail}", 0xC000)
        return EndpointUnavailable(f"{errs.where}: cannot send to {errs.address} (dcmsend exit "
                                   f"{proc.returncode}): {tail or 'no output'}")

    def send(self, files: list[tuple[str, str]]) -> list[Result]:
        """``run``, then instances left unsent because the peer ended the association (e.g. it aborted on one
        instance) go again: the first of them alone, the rest in a new run, until each got an answer or failed."""
        results = self.run(files)
        while True:
            unsent = [i for i, (_, _, why) in enumerate(results) if why is NOT_SENT]
            if not unsent:
                return results
            first, rest = unsent[0], unsent[1:]
            try:
                [results[first]] = self.run([files[first]])
                if results[first][2] is NOT_SENT:
                    results[first] = (results[first][0], results[first][1], EndpointUnavailable(
                        f"{self.node.errors.where}: C-STORE of instance {results[first][1]}: no answer from "
                        f"{self.node.errors.address} (the association ended)"))
                if rest:
                    for i, again in zip(rest, self.run([files[i] for i in rest]), strict=True):
                        results[i] = again
            except DianaError as exc:
                for i in unsent:
                    if results[i][2] is NOT_SENT:
                        results[i] = (results[i][0], results[i][1], exc)


NOT_SENT = EndpointUnavailable("not sent")  # marker: the association ended before the instance went out


def _line_about(stderr: str, path: str) -> str:
    for line in stderr.splitlines():
        if path in line:
            return line.replace(path, os.path.basename(path)).strip()
    return ""


class _Files:
    """Payloads as files on disk: paths as given, bytes written once into a private temporary folder."""

    def __init__(self) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._n = 0
        self._lock = threading.Lock()

    def path(self, payload: Payload) -> str:
        if payload.path is not None and payload.data is None:
            return os.path.abspath(payload.path)
        with self._lock:
            if self._tmp is None:
                self._tmp = tempfile.TemporaryDirectory(prefix="diana-dcmsend-")
            self._n += 1
            path = os.path.join(self._tmp.name, f"{self._n:08d}.dcm")
        with open(path, "wb") as fh:
            fh.write(payload.data or b"")
        return path

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()


def send_one(node: Any, payload: Payload) -> str:
    """C-STORE one instance; its SOP Instance UID, or the typed error of its failure."""
    files = _Files()
    try:
        [(_, sop, why)] = DcmSend(node).send([(payload.label, files.path(payload))])
    finally:
        files.close()
    if why is not None:
        raise why
    return sop


def store_many(node: Any, items: Iterable[Any], progress: Progress | None = None, workers: int = 1) -> BulkResult:
    """C-STORE every instance of ``items`` with dcmsend, ``workers`` runs at once, each of up to BATCH files;
    failures are collected per instance (a run that could not associate fails each of its instances)."""
    sender, files = DcmSend(node), _Files()
    done, failed, lock = 0, [], threading.Lock()

    refused: list[list[Payload]] = []  # shares whose association the node refused while others were open

    def batch(chunk: list[Payload], parallel: bool = False) -> None:
        nonlocal done
        try:
            paths = [(p.label, files.path(p)) for p in chunk]
            results = sender.send(paths)
        except AssociationRejected as exc:
            if parallel:  # maybe its association limit: sent again one at a time once the others are done
                with lock:
                    refused.append(chunk)
                return
            results = [(p.label, "", exc) for p in chunk]
        except DianaError as exc:
            results = [(p.label, "", exc) for p in chunk]
        with lock:
            for label, _, why in results:
                if why is None:
                    done += 1
                else:
                    failed.append((label, str(why)))
            if progress:
                progress(done + len(failed), None)

    def chunks() -> Iterable[list[Payload]]:
        chunk: list[Payload] = []
        size = BATCH if workers <= 1 else 16  # small shares keep every run busy
        for payload in all_payloads(items):
            chunk.append(payload)
            if len(chunk) >= size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk

    try:
        if workers <= 1:
            for chunk in chunks():
                batch(chunk)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix=f"dcmsend-{node.name}") as pool:
                list(pool.map(lambda chunk: batch(chunk, parallel=True), chunks()))
            for chunk in refused:
                batch(chunk)
    finally:
        files.close()
    if failed:
        logger.warning("%s: C-STORE (dcmtk): %d stored, %d failed", node.name, done, len(failed))
    else:
        logger.info("%s: C-STORE (dcmtk): %d stored", node.name, done)
    return BulkResult(done=done, failed=failed)
