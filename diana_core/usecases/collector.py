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
Beside it: the worklist (``worklist``), the run's result and tally (``collect_result``), moving one study
(``study_transfer``) and what an endpoint holds of a study (``study_presence``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
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
    JobError,
    NotFound,
)
from diana_core.execution import Executor, JobState, UnitResult, WorkUnit
from diana_core.ports import Hosted, Recovering, StudyRetriever
from diana_core.protection import Guard
from diana_core.pseudonym import Pseudonymizer
from diana_core.quarantine import QuarantineStore
from diana_core.usecases.collect_result import CollectResult, Progress, Tally, is_transient_failure
from diana_core.usecases.executors import ThreadExecutor
from diana_core.usecases.jobfiles import JobLock, private_folder, write_failure_report, write_key_file
from diana_core.usecases.jobstate import EmbeddedJobState
from diana_core.usecases.journal import DONE, FAILED, RESOLVED, SENDING
from diana_core.usecases.modality_source import ModalitySource
from diana_core.usecases.study_presence import (
    count_at,
    delete_partial,
    reported_instances,
    study_exists,
)
from diana_core.usecases.study_transfer import transfer_study
from diana_core.usecases.worklist import read_worklist, text_worklist

logger = logging.getLogger(__name__)

__all__ = ["CollectResult", "Collector", "Progress", "key_fingerprint", "read_worklist", "text_worklist"]


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
            delete_partial(dest, entry.dest_oid)  # sources never hold pseudonymized copies: nothing to clean there
        elif study_exists(dest, self._dest_study(tags, anonymize)):
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
        held = count_at(dest, self._dest_study(dict(tags), anonymize))
        expected = reported_instances(tags) or count_at(source, study) or 0
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
        """Move, pseudonymize (with ``anonymize``) and verify one study (``study_transfer.transfer_study``)."""
        return transfer_study(study, tags, source, dest, workdir, self.pseudonymizer if anonymize else None,
                              self._dest_study(tags, anonymize), dest_oid)

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

        tally = Tally(result, job_state, trail, rows, progress)

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
                transient = [d for d in worklist if is_transient_failure(result.failed.get(str(d.tag(self.key))))]
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
                        private_folder(folder)
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
            private_folder(folder)
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


def key_fingerprint(pseudonymizer: Pseudonymizer) -> str:
    """A short non-secret digest of the pseudonym key, so a worker with another key refuses the work."""
    return hashlib.sha256(b"diana-key-fingerprint|" + pseudonymizer._key_bytes).hexdigest()[:16]


def _log_hold(reason: str) -> None:
    logger.info("a study waits for its source (%s)", reason)


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
