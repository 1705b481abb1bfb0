"""Collector: worklist -> resolve on the source -> retrieve -> pseudonymize -> deliver -> record.

Written against ports only. The source must ``find`` studies by AccessionNumber; a ``Retriever`` (ProxiedDicom)
is asked to retrieve first. Pseudonymization always goes through the one local engine: by a destination that
is ``Pseudonymizing`` (DcmDir), else through a local relay folder between source and destination (the source
never holds a pseudonymized copy). Identifiers come from one keyed ``Pseudonymizer``, so the destination id is
known in advance; its profile, key id and what the engine did go to ``deidentification.json`` in the job folder.
A ``JobState`` (the job folder's journal and key file, or a shared Redis state) makes reruns and
redelivered units idempotent; the key rows map originals to pseudonyms, kept apart from the data and never logged.
Each study is one ``WorkUnit`` handed to an ``Executor``: a thread pool here by default, Celery workers on request.
One process at a time owns a job folder (a lock); a study counts as done only when the destination holds as many
instances as the source reported and sent (less those quarantined for burned-in PHI).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from attrs import define, field

from diana_core.audit import AuditTrail
from diana_core.deid_profile import DeidReport
from diana_core.dicom import DicomLevel, orthanc_id
from diana_core.dixel import Dixel, DixelView
from diana_core.errors import (
    ConfigError,
    DianaError,
    IncompleteStudy,
    JobError,
    NotFound,
    NotSupportedError,
    is_transient,
)
from diana_core.execution import Executor, JobState, UnitResult, WorkUnit
from diana_core.ports import Hosted, InstanceCounter, Recovering, StudyRetriever
from diana_core.protection import Guard
from diana_core.pseudonym import Pseudonymizer
from diana_core.quarantine import QuarantineStore
from diana_core.services import build_endpoint
from diana_core.usecases.executors import ThreadExecutor
from diana_core.usecases.jobfiles import JobLock, count_archive, write_failure_report, write_key_file
from diana_core.usecases.jobstate import EmbeddedJobState
from diana_core.usecases.journal import DONE, FAILED, RESOLVED, SENDING
from diana_core.usecases.modality_source import ModalitySource
from diana_core.usecases.relay import deliver_pseudonymized

logger = logging.getLogger(__name__)

Progress = Callable[[str, str, dict[str, int]], None]
"""progress(outcome, key, counts): outcome is done | skipped | failed | resolved."""


@define
class CollectResult:
    """Summary of one run (counts and failures name worklist keys, which stay in the job folder)."""

    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(factory=dict)
    instances: int = 0
    seconds: float = 0.0
    key_file: str | None = None
    failure_report: str | None = None
    dry_run: bool = False
    key_id: str | None = None  # fingerprint of the pseudonym key (never the key); None when not pseudonymizing
    profile: str | None = None
    deid_report: str | None = None  # deidentification.json in the job folder
    quarantined: int = 0
    unverified: int = 0  # studies done or skipped at a destination that cannot count what it holds

    @property
    def ok(self) -> bool:
        return not self.failed


def read_worklist(data: Any, key: str = "AccessionNumber", query: Mapping[str, Any] | None = None,
                  project: str | None = None) -> list[Dixel]:
    """Worklist from a CSV path (column ``key``, or the first column), a plain text file of ids (one per line),
    a project folder holding ``{project}.studies.txt`` (the original's layout) or ``{project}.csv``, an endpoint
    searched with ``query`` (e.g. a Montage report search: {"q": "pneumonia", ...}), or ids/Dixels."""
    if isinstance(data, (str, os.PathLike)) and Path(data).is_dir():
        data = _project_worklist(Path(data), project)
    if isinstance(data, (str, os.PathLike)) and str(data).lower().endswith(".txt") and os.path.isfile(data):
        data = text_worklist(Path(data))
    if isinstance(data, (str, os.PathLike)):
        if not os.path.isfile(data):
            raise ConfigError(f"worklist {os.fspath(data)!r} is not a file (nor a service name)")
        # the key column is required: a header without it is refused naming the columns found and the closest one
        data = build_endpoint("CsvFile", {"fp": str(data), "key": key, "required": [key]}, service_name=str(data))
    searchable = hasattr(data, "find") and not isinstance(data, (list, tuple))
    items = list(data.find(dict(query or {})) if searchable else data)
    out = []
    for n, item in enumerate(items, start=1):
        if isinstance(item, Dixel):
            if not item.tag(key):
                found = ", ".join(repr(k) for k in list(item.tags)[:20])
                raise ConfigError(f"worklist item {n} has no {key} (its columns: {found or 'none'}); "
                                  "choose the key column with --key-column NAME")
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(Dixel(tags=dict(item)))
        else:
            out.append(Dixel(tags={key: str(item)}))
    return out


def _project_worklist(folder: Path, project: str | None) -> Path:
    names = [f"{project}.studies.txt", f"{project}.studies.csv", f"{project}.csv"] if project else []
    for name in names:
        if (folder / name).is_file():
            return folder / name
    wanted = " or ".join(names) or "a worklist file (give the project name)"
    raise ConfigError(f"project folder {str(folder)!r} has no {wanted}")


def text_worklist(path: Path, max_line: int = 4096) -> list[str]:
    """One id per line; blank lines and # comments skipped (a UTF-8 BOM too). Read line by line with a capped
    readline: binary data, another encoding or an endless line is a ConfigError naming the file, line and fix."""
    where = f"worklist {path.name!r}"
    ids: list[str] = []
    try:
        with path.open("rb") as handle:
            for n, raw in enumerate(iter(lambda: handle.readline(max_line + 1), b""), start=1):
                if len(raw) > max_line and not raw.endswith(b"\n"):
                    raise ConfigError(f"{where}: line {n} is longer than {max_line} bytes; a worklist holds one id "
                                      "per line: check that this is the right file")
                if b"\x00" in raw:
                    raise ConfigError(f"{where}: line {n} holds NUL bytes: this is a binary file, not a list of ids")
                try:
                    line = raw.decode("utf-8-sig" if n == 1 else "utf-8").strip()
                except UnicodeDecodeError:
                    raise ConfigError(f"{where}: line {n} is not UTF-8; save the file as UTF-8 text") from None
                if line and not line.startswith("#"):
                    ids.append(line)
    except OSError as exc:
        raise ConfigError(f"cannot read worklist {str(path)!r}: {exc.strerror}") from exc
    return ids


@define
class Collector:
    """Collect studies named by a worklist from a source into a destination, resumably and in parallel."""

    pool_size: int = 0
    retries: int = 1  # extra passes over studies that failed because an endpoint was unavailable
    retry_delay: float = 10.0  # seconds before each such pass (a PACS hiccup often lasts seconds)
    pseudonymizer: Pseudonymizer = field(factory=Pseudonymizer)
    key: str = "AccessionNumber"
    guard: Guard | None = None  # PACS protection around each study (concurrency, rate, transfer window)

    # --- one study ---------------------------------------------------------------------------------
    def resolve(self, item: Dixel, source: Any) -> Dixel:
        """The one study the source holds for this worklist item (NotFound / JobError when 0 or many)."""
        value = item.tag(self.key)
        found = list(source.find({self.key: value}, level=DicomLevel.STUDIES))
        if not found:
            raise NotFound(f"no study for this {self.key} on {source.name}")
        uids = {d.tag("StudyInstanceUID") for d in found}
        if len(uids) > 1:
            raise JobError(f"{len(uids)} studies match this {self.key} on {source.name}; refine the worklist")
        return found[0]

    @staticmethod
    def _retrieve(study: Dixel, source: Any) -> Dixel:
        # a StudyRetriever (ProxiedDicom: C-MOVE to its proxy) leaves a copy that _transfer releases afterwards
        return source.retrieve_study(study) if isinstance(source, StudyRetriever) else study

    def collect_one(self, item: Dixel, source: Any, dest: Any, anonymize: bool, journal: JobState,
                    dry_run: bool = False) -> tuple[str, int, bool]:
        """Process one worklist item; returns (outcome, instance count, whether the destination counted it).
        Raises DianaError on failure."""
        key = str(item.tag(self.key))
        entry = journal.get(key)
        if entry is not None and entry.status == DONE:
            return "skipped", 0, True  # verified when it was done
        study = self.resolve(item, source)
        tags = dict(study.tags)
        dest_oid = self._dest_oid(tags, anonymize)
        journal.mark(key, RESOLVED, source_oid=study.oid(), dest_oid=dest_oid)
        if dry_run:
            return "resolved", 0, True
        # a previous run died mid-transfer (sending), or failed once something may have moved (failed with a dest
        # id: a short study, an outage): its partial copy at the destination is removed and the study sent again
        interrupted = entry is not None and entry.status in (SENDING, FAILED) and bool(entry.dest_oid)
        if interrupted and entry is not None and entry.dest_oid:
            _delete(dest, entry.dest_oid)  # sources never hold pseudonymized copies: nothing to clean there
        elif _exists(dest, self._dest_study(tags, anonymize)):
            # "exists" is not "complete" (a watch route or a killed run may have left part of it): skip only what
            # the destination counts as whole; anything else is sent again over it (held instances are answered
            # "already stored") and verified like a new study
            held, expected = self._held_and_expected(study, tags, source, dest, anonymize)
            if held is not None and expected and held >= expected:
                self._record_key(key, tags, dest_oid, anonymize, journal)
                journal.mark(key, DONE, dest_oid=dest_oid, instances=held)
                return "skipped", 0, True
            logger.info("%s: study %s holds %s of %s instances: sending it again to complete it", dest.name,
                        dest_oid, "an unknown number" if held is None else held, expected or "unknown")
        study = self._retrieve(study, source)
        full = self._quietly(source.get, study, level=DicomLevel.STUDIES, view=DixelView.TAGS)
        if isinstance(full, Dixel):
            tags = {**tags, **{k: v for k, v in full.tags.items() if v not in (None, "")}}
            dest_oid = self._dest_oid(tags, anonymize)
        journal.mark(key, SENDING, dest_oid=dest_oid)
        count, counted = self._transfer(study, tags, source, dest, anonymize, journal.scratch, dest_oid)
        self._record_key(key, tags, dest_oid, anonymize, journal)  # durable before the study counts as done
        journal.mark(key, DONE, dest_oid=dest_oid, instances=count)
        return "done", count, counted

    def _record_key(self, key: str, tags: Mapping[str, Any], dest_oid: str, anonymize: bool,
                    journal: JobState) -> None:
        """The study's key row (original -> pseudonym), for every study done or found complete."""
        if not anonymize:
            return
        new = self.pseudonymizer.replacement_map(tags)
        journal.add_key_row({
            self.key: key, "PatientID": str(tags.get("PatientID", "")),
            "StudyInstanceUID": str(tags.get("StudyInstanceUID", "")),
            "PseudoPatientID": new["PatientID"], "PseudoPatientName": new["PatientName"],
            "PseudoAccessionNumber": new.get("AccessionNumber", ""),
            "PseudoStudyInstanceUID": new["StudyInstanceUID"], "DestOID": dest_oid,
        })

    def _held_and_expected(self, study: Dixel, tags: Mapping[str, Any], source: Any, dest: Any,
                           anonymize: bool) -> tuple[int | None, int]:
        """(instances the destination holds of this study, None when it cannot count; instances the source holds,
        from its C-FIND answer or its own count, 0 when unknown)."""
        held = _count_at(dest, self._dest_study(dict(tags), anonymize))
        expected = _reported(tags) or _count_at(source, study) or 0
        return held, expected

    def _dest_study(self, tags: dict[str, Any], anonymize: bool) -> Dixel:
        """The study as the destination will hold it (its ``oid()`` is ``_dest_oid``): UID-addressed destinations
        (DICOMweb) look it up by StudyInstanceUID, Orthanc-like ones by the id."""
        new = self.pseudonymizer.replacement_map(tags) if anonymize else tags
        return Dixel(tags={"PatientID": str(new.get("PatientID", "")),
                           "StudyInstanceUID": str(new.get("StudyInstanceUID", ""))}, level=DicomLevel.STUDIES)

    def _dest_oid(self, tags: dict[str, Any], anonymize: bool) -> str:
        if not anonymize:
            return orthanc_id(str(tags.get("PatientID", "")), str(tags.get("StudyInstanceUID", "")))
        return self.pseudonymizer.predicted_oid(tags)

    def _transfer(self, study: Dixel, tags: dict[str, Any], source: Any, dest: Any, anonymize: bool,
                  workdir: Path, dest_oid: str = "") -> tuple[int, bool]:
        """Move one study as a zip archive streamed through a private temp file (never whole in memory); returns
        (instances the destination holds, True when it counted them itself), after checking it holds every
        instance reported and sent.

        With ``anonymize`` the original archive is pseudonymized by the one local engine: by a ``Pseudonymizing``
        destination itself, else in a relay folder beside the archive (``relay.deliver_pseudonymized``).
        """
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=workdir) as tmp:
                archive = Path(tmp) / "study.zip"
                source.get(study, level=DicomLevel.STUDIES, view=DixelView.FILE, dest=str(archive))
                sent = count_archive(archive)
                reported = _reported(tags)
                if sent is not None and reported and sent < reported:
                    raise IncompleteStudy(f"{source.name}: study {study.summary()['id']}: retrieved {sent} of the "
                                          f"{reported} instances the source reported")
                parcel = Dixel(meta={"FileName": str(archive)}, level=DicomLevel.STUDIES)
                if anonymize:
                    result = deliver_pseudonymized(parcel, dest, self.pseudonymizer, tmp)
                else:
                    result = dest.put(parcel)
        finally:
            if isinstance(source, StudyRetriever):
                self._release(source, study)
        expected = max(sent or 0, reported or 0)
        if anonymize:  # instances kept back for burned-in PHI are not owed to the destination
            expected = max(expected - self.pseudonymizer.report.quarantined_in(study.oid()), 0)
        counted = _count_at(dest, self._dest_study(tags, anonymize))
        held = _count(result) if counted is None else counted
        if expected and held < expected:
            raise IncompleteStudy(f"{dest.name}: study {dest_oid or study.summary()['id']} holds {held} of the "
                                  f"{expected} instances sent")
        return held, counted is not None

    @staticmethod
    def _release(source: Any, study: Dixel, patience: float = 20.0) -> None:
        """Drop the copy a StudyRetriever made (identified data on a proxy): a proxy that is restarting right now
        gets ``patience`` seconds; a copy that still cannot be removed is logged, never silently left."""
        delay, deadline = 0.2, time.monotonic() + patience
        while True:
            try:
                source.release_study(study)
                return
            except DianaError as exc:
                if not is_transient(exc) or time.monotonic() > deadline:
                    logger.warning("%s: the retrieved copy of study %s is still there: %s", source.name,
                                   study.summary()["id"], exc)
                    return
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    @staticmethod
    def _quietly(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DianaError as exc:
            logger.debug("ignored during cleanup: %s", exc)
            return None

    # --- one unit: what an executor runs ---------------------------------------------------------------
    def unit(self, job: str, item: Dixel, source: Any, dest: Any, anonymize: bool, dry_run: bool) -> WorkUnit:
        """The plain-data unit of one worklist item: service names, never endpoints or secrets."""
        key = str(item.tag(self.key))
        pseudo = self.pseudonymizer
        domain = source.domain if isinstance(source, ModalitySource) else None
        inner = source.source if isinstance(source, ModalitySource) else source
        return WorkUnit(job=job, kind="collect", key=key, item={self.key: key},
                        services={"source": str(getattr(inner, "name", "")), "dest": str(getattr(dest, "name", ""))},
                        options={"anonymize": anonymize, "dry_run": dry_run, "key_column": self.key,
                                 "uid_scheme": pseudo.uid_scheme, "uid_root": pseudo.uid_root, "app_id": pseudo.app_id,
                                 "key_fingerprint": key_fingerprint(pseudo), "domain": domain})

    def run_unit(self, unit: WorkUnit, source: Any, dest: Any, state: JobState, worker: str = "local") -> UnitResult:
        """Collect one study unit with endpoints the caller built; a failure is journaled and returned, not raised.

        Outcome "busy" means another live worker holds this study (a redelivered copy): try again later.
        """
        key = unit.key
        anonymize, dry_run = bool(unit.options.get("anonymize")), bool(unit.options.get("dry_run"))
        item = Dixel(tags={self.key: key, **unit.item})
        with state.claim(key) as mine:
            if not mine:
                return UnitResult(unit.job, unit.kind, key, "busy", worker=worker)
            try:
                fingerprint = unit.options.get("key_fingerprint")
                if anonymize and fingerprint and fingerprint != key_fingerprint(self.pseudonymizer):
                    raise ConfigError(f"worker {worker}: DIANA_PSEUDONYM_KEY differs from the coordinator's")
                entry = state.get(key)
                if self.guard is None or dry_run or (entry is not None and entry.status == DONE):
                    outcome, count, counted = self.collect_one(item, source, dest, anonymize, state, dry_run)
                else:
                    with self.guard.slot(str(getattr(source, "name", "")), on_hold=_log_hold):
                        outcome, count, counted = self.collect_one(item, source, dest, anonymize, state, dry_run)
            except DianaError as exc:
                reason = f"{type(exc).__name__}: {exc}"
                state.mark(key, FAILED, error=reason)
                return UnitResult(unit.job, unit.kind, key, "failed", error=reason, worker=worker)
        return UnitResult(unit.job, unit.kind, key, outcome, count=count, worker=worker,
                          counters={"unverified": int(not counted)})

    # --- the job -----------------------------------------------------------------------------------
    def run(self, project: str, data_path: Any, source: Any, domain: str | None = None, dest: Any = None,
            anonymize: bool = False, job_dir: str | os.PathLike[str] | None = None, dry_run: bool = False,
            progress: Progress | None = None, executor: Executor | None = None,
            state: JobState | None = None) -> CollectResult:
        """Collect every study of the worklist ``data_path``; returns counts and failures (never raises per item).

        ``executor`` runs the study units (default: a pool of ``pool_size`` threads here); ``state`` is the job's
        record (default: the journal and key file in ``job_dir``). With a shared state the key file and failure
        report are still written to ``job_dir`` at the end.
        ``domain`` names a DICOM modality of an Orthanc-like source to query and retrieve from (the original's
        use); a ProxiedDicom source already knows its remote (``proxy_domain``). ``data_path`` may be a project
        folder holding ``{project}.studies.txt``.
        """
        if dest is None and not dry_run:
            raise ConfigError("the collector needs a destination")
        started = time.monotonic()
        folder = Path(job_dir or Path.cwd() / f"diana-job-{project}")
        _refuse_shared_server(source, dest, dry_run)
        worklist = read_worklist(data_path, self.key, project=project)
        if domain and not isinstance(source, StudyRetriever):
            source = ModalitySource(source, domain)
        job_lock = JobLock(folder)  # raises JobLocked, naming the pid, while another run owns the folder
        try:
            return self._run_locked(project, folder, worklist, source, dest, anonymize, dry_run, progress, started,
                                    executor, state)
        finally:
            job_lock.release()

    def _run_locked(self, project: str, folder: Path, worklist: list[Dixel], source: Any, dest: Any,
                    anonymize: bool, dry_run: bool, progress: Progress | None, started: float,
                    executor: Executor | None, state: JobState | None) -> CollectResult:
        _purge_leftovers(folder, dest)
        own_state = state is None
        job_state: JobState = EmbeddedJobState(folder, self.key) if state is None else state
        result = CollectResult(total=len(worklist), dry_run=dry_run)
        if anonymize:
            self.pseudonymizer.require_key()  # no key, no pseudonyms (unless unkeyed was asked for)
            pz = self.pseudonymizer
            store = QuarantineStore(folder / "quarantine")  # held-back instances, kept for review
            pz.report = DeidReport(profile=pz.profile.name, key_id=pz.key_id, store=store)
            result.key_id, result.profile = pz.key_id, pz.profile.name
            if not dry_run:
                store.set_context(profile=pz.profile.name, key_id=pz.key_id, uid_scheme=pz.uid_scheme,
                                  unkeyed=pz.unkeyed, dest=getattr(dest, "name", None),
                                  dest_ctype=type(dest).__name__, dest_path=str(getattr(dest, "path", "") or ""))
        runner: Executor = executor or ThreadExecutor(
            lambda unit: self.run_unit(unit, source, dest, job_state), self.pool_size, "diana-collect")
        rows = {str(item.tag(self.key)): n for n, item in enumerate(worklist, start=1)}  # log rows, never keys
        job_state.set_info(kind="collect", project=project, total=len(worklist), started=time.time(),
                           executor=runner.name, folder=str(folder.resolve()))
        trail = AuditTrail.for_job(folder)  # who disclosed what, where to (hash-chained, ids only with --show-ids)
        trail.start("collect", source, dest, result.profile, result.key_id, job=job_state.job, total=len(worklist),
                    anonymize=anonymize, dry_run=dry_run)

        def tally(res: UnitResult, entry: Any = None) -> None:
            entry = entry if entry is not None else job_state.get(res.key)
            # a skipped study disclosed nothing: its line is written but not fsynced on its own (the next
            # disclosure's or the finish line's fsync carries it), so a resume does not pay a disk sync per done study
            trail.item(res.outcome, res.count, getattr(entry, "dest_oid", None), rows.get(res.key), res.key, res.error,
                       durable=res.outcome != "skipped")
            if res.outcome == "failed":
                result.failed[res.key] = res.error or "failed"
                logger.warning("worklist row %d failed: %s", rows.get(res.key, 0), (res.error or "").split(":")[0])
            elif res.outcome == "done":
                result.done += 1
                result.instances += res.count
                result.unverified += res.counters.get("unverified", 0)
            elif res.outcome == "skipped":
                result.skipped += 1
                result.unverified += res.counters.get("unverified", 0)
            elif res.outcome == "resolved":
                result.done += 1
            if progress:
                progress(res.outcome, res.key, {"done": result.done, "skipped": result.skipped,
                                                "failed": len(result.failed), "total": result.total})

        def one_pass(items: list[Dixel]) -> None:
            # studies the journal already holds as done are skipped here, from one read of the journal: no unit,
            # no executor round trip, no lookups per study (a rerun of a 100k-study job starts at once)
            done = {e.key: e for e in job_state.entries(DONE)}
            for item in items:
                key = str(item.tag(self.key))
                if key in done:
                    tally(UnitResult(job_state.job, "collect", key, "skipped", counters={"unverified": 0}),
                          done[key])
                    continue
                runner.submit(self.unit(job_state.job, item, source, dest, anonymize, dry_run))
            for res in runner.results():
                tally(res)

        try:
            one_pass(worklist)
            for attempt in range(self.retries):
                transient = [d for d in worklist if _is_transient(result.failed.get(str(d.tag(self.key))))]
                if not transient:
                    break
                logger.warning("retrying %d studies whose endpoint was unavailable (pass %d of %d) in %.0f s",
                               len(transient), attempt + 1, self.retries, self.retry_delay)
                time.sleep(self.retry_delay)
                for d in transient:
                    result.failed.pop(str(d.tag(self.key)), None)
                one_pass(transient)
            if anonymize and not dry_run:
                key_path = folder / "key.csv"
                if not isinstance(job_state, EmbeddedJobState) or job_state.folder != folder:
                    rows_out = job_state.key_rows()  # shared state: the coordinator writes the key file (0600)
                    if rows_out:
                        _private_folder(folder)
                        write_key_file(key_path, rows_out, self.key)  # merged with earlier runs', fsynced
                        job_state.forget_key_rows([r[self.key] for r in rows_out])  # no 2nd copy in the broker
                if key_path.exists() and key_path.stat().st_size:
                    result.key_file = str(key_path)
            job_state.set_info(finished=time.time())
            trail.finish(done=result.done, skipped=result.skipped, failed=len(result.failed), instances=result.instances)
        finally:
            if executor is None:
                runner.close()
            if own_state:
                job_state.close()
        result.seconds = time.monotonic() - started
        if result.failed:
            _private_folder(folder)
            result.failure_report = str(write_failure_report(folder / "failures.csv", result.failed, self.key))
        if anonymize and not dry_run:
            pz = self.pseudonymizer
            result.quarantined = len(pz.report.quarantined)
            result.deid_report = str(pz.report.write(folder / "deidentification.json", {
                "uid_scheme": pz.uid_scheme, "profile_detail": pz.profile.describe()}))
        logger.info("collected %d, skipped %d, failed %d of %d", result.done, result.skipped, len(result.failed),
                    result.total)
        return result

    # reference-compatible helpers
    def handle_worklist(self, items: Iterable[Any], source: Any, domain: str | None, dest: Any,
                        anonymize: bool = False, job_dir: str | None = None) -> CollectResult:
        return self.run("worklist", list(items), source, domain, dest, anonymize, job_dir=job_dir)

    def pull_and_save(self, items: Iterable[Any], source: Any, domain: str | None, dest: Any,
                      anonymize: bool = False, job_dir: str | None = None) -> CollectResult:
        return self.handle_worklist(items, source, domain, dest, anonymize, job_dir)

    pull_and_send = pull_and_save

    def create_pool(self) -> Collector:
        """Optional (the original's scripts call it): each run makes its own bounded pool of ``pool_size``
        workers and closes it at the end, so there is nothing to set up; returns the collector."""
        return self

    def make_key(self, ids: Iterable[Any], source: Any, domain: str | None = None) -> list[dict[str, str]]:
        """Original -> pseudonym rows for the worklist, resolving each study on the source (no transfer);
        ``domain`` names the modality of an Orthanc-like source to query, as in ``run``."""
        if domain and not isinstance(source, StudyRetriever):
            source = ModalitySource(source, domain)
        rows = []
        for item in read_worklist(list(ids), self.key):
            tags = self.resolve(item, source).tags
            new = self.pseudonymizer.replacement_map(tags)
            rows.append({self.key: str(item.tag(self.key)), "PseudoPatientID": new["PatientID"],
                         "PseudoStudyInstanceUID": new["StudyInstanceUID"]})
        return rows


def _private_folder(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)


def key_fingerprint(pseudonymizer: Pseudonymizer) -> str:
    """A short non-secret digest of the pseudonym key, so a worker with another key refuses the work."""
    return hashlib.sha256(b"diana-key-fingerprint|" + pseudonymizer._key_bytes).hexdigest()[:16]


def _log_hold(reason: str) -> None:
    logger.info("a study waits for its source (%s)", reason)


def _is_transient(reason: str | None) -> bool:
    """A failure worth another pass: the endpoint was unreachable or the study arrived short (not refused
    credentials, not bad data)."""
    return bool(reason) and str(reason).startswith(("EndpointUnavailable", "IncompleteStudy"))


def _reported(tags: Mapping[str, Any]) -> int:
    """Instances the source said the study holds (C-FIND NumberOfStudyRelatedInstances), 0 when it did not say."""
    try:
        return int(tags.get("NumberOfStudyRelatedInstances") or 0)
    except (TypeError, ValueError):
        return 0


def _delete(endpoint: Any, oid: str) -> None:
    """Remove a study by id where it may be partial; an absent study is fine, an outage is raised (retried)."""
    try:
        endpoint.delete(oid, level=DicomLevel.STUDIES)
    except NotFound:
        pass
    except NotSupportedError:  # a destination that cannot delete: a partial copy there is completed by the resend
        logger.warning("%s cannot delete a partial study; sending it again over it", getattr(endpoint, "name", "?"))


def _refuse_shared_server(source: Any, dest: Any, dry_run: bool) -> None:
    """ConfigError when the destination lives on the source's server (a ProxiedDicom's proxy, or the source Orthanc
    itself): the collector deletes what it retrieves and anonymizes there, which would be the delivered copy."""
    source_name, dest_name = getattr(source, "name", "source"), getattr(dest, "name", "destination")
    if dry_run or not (isinstance(source, Hosted) and isinstance(dest, Hosted)):
        return
    if source.server_url().rstrip("/") == dest.server_url().rstrip("/"):
        raise ConfigError(
            f"destination {dest_name!r} is on the same server as source {source_name!r} ({dest.server_url()}): "
            "the collector removes the copies it retrieves or anonymizes there, which would delete the delivered "
            "studies. Deliver to another Orthanc (or a DcmDir folder).")


def _purge_leftovers(folder: Path, dest: Any) -> None:
    """Remove what a killed run left: study archives (identified) in JOB/tmp, partial files at the destination."""
    tmp = folder / "tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
        logger.info("removed the temporary files of an interrupted run")
    if isinstance(dest, Recovering):
        dest.recover()


def _exists(dest: Any, study: Dixel) -> bool:
    try:
        return bool(dest.exists(study, level=DicomLevel.STUDIES))
    except TypeError:
        return bool(dest.exists(study))


def _count_at(endpoint: Any, study: Dixel) -> int | None:
    """Instances ``endpoint`` holds of ``study``; None when it cannot count (no InstanceCounter, or it says so)."""
    if not isinstance(endpoint, InstanceCounter):
        return None
    try:
        return endpoint.count_instances(study, level=DicomLevel.STUDIES)
    except NotSupportedError:
        return None


def _count(result: Any) -> int:
    """Instances delivered, from what the destination's put returned (a count, ids, or a BulkResult)."""
    if isinstance(result, (list, tuple)):
        return len(result)
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    done = getattr(result, "done", None)
    return int(done) + int(getattr(result, "skipped", 0)) if isinstance(done, int) else 0

