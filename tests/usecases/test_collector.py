"""Collector against honest in-memory ports: pseudonyms, journal, resume, failures, key file."""

import csv
import json
import os
import stat

import pytest

from diana_core.pseudonym import Pseudonymizer
from diana_core.usecases.collector import Collector, read_worklist
from diana_core.usecases.journal import Journal

from .collector_fakes import MemoryArchive, MemoryPacs, make_study


@pytest.fixture
def pacs():
    p = MemoryPacs()
    for n in range(6):
        p.add(make_study(n))
    return p


def accessions(n):
    return [f"ACC{i:04}" for i in range(n)]


def test_collects_pseudonymized_studies_with_predicted_ids(pacs, tmp_path):
    dest = MemoryArchive()
    result = Collector(pool_size=3).run("p", accessions(6), pacs, None, dest, anonymize=True, job_dir=tmp_path)
    assert result.ok and result.done == 6 and result.instances == 18
    pseudo = Pseudonymizer()
    expected = {pseudo.predicted_oid(make_study(n)["tags"]) for n in range(6)}
    assert set(dest.stored) == expected
    text = json.dumps(dest.stored)
    for n in range(6):
        for value in ("MRN", "DOE^PATIENT", "ACC", "1.2.840.99."):
            assert f"{value}{n:04}" not in text and f"{value}{n}" not in text
    # temporary anonymized copies were removed from the source
    assert len(pacs.studies) == 6


def test_key_file_maps_originals_and_is_private(pacs, tmp_path):
    result = Collector().run("p", accessions(2), pacs, None, MemoryArchive(), anonymize=True, job_dir=tmp_path)
    rows = list(csv.DictReader(open(result.key_file)))
    assert {r["AccessionNumber"] for r in rows} == {"ACC0000", "ACC0001"}
    assert rows[0]["PseudoPatientID"] == Pseudonymizer().identity(make_study(0)["tags"]).ID
    assert stat.S_IMODE(os.stat(result.key_file).st_mode) == 0o600


def test_rerun_skips_done_studies_without_touching_the_source(pacs, tmp_path):
    dest = MemoryArchive()
    Collector().run("p", accessions(4), pacs, None, dest, anonymize=True, job_dir=tmp_path)
    pacs.calls.clear()
    again = Collector().run("p", accessions(4), pacs, None, dest, anonymize=True, job_dir=tmp_path)
    assert again.skipped == 4 and again.done == 0 and pacs.calls == []
    assert dest.puts == 4


def test_interrupted_run_resumes_with_no_loss_and_no_duplicate(pacs, tmp_path):
    dest = MemoryArchive(fail_after=3)
    with pytest.raises(KeyboardInterrupt):
        Collector().run("p", accessions(6), pacs, None, dest, anonymize=True, job_dir=tmp_path)
    assert len(dest.stored) == 3
    keyed = list(csv.DictReader(open(tmp_path / "key.csv")))
    assert len(keyed) == 3, "the mapping of every delivered study survives the interruption"
    dest.fail_after = None
    result = Collector().run("p", accessions(6), pacs, None, dest, anonymize=True, job_dir=tmp_path)
    assert result.ok and result.skipped == 3 and result.done == 3
    assert len(dest.stored) == 6
    assert sorted(r["AccessionNumber"] for r in csv.DictReader(open(tmp_path / "key.csv"))) == accessions(6)
    assert all(len(s["instances"]) == 3 for s in dest.stored.values())  # the interrupted study was redone once


def test_a_pacs_hiccup_is_retried_within_the_run(pacs, tmp_path):
    pacs.down_for.add("ACC0001")

    class Recovering(MemoryArchive):
        def exists(self, item, **kwargs):
            pacs.down_for.clear()  # the PACS comes back while the collector works on the next study
            return super().exists(item, **kwargs)

    result = Collector(retry_delay=0).run("p", accessions(3), pacs, None, Recovering(), anonymize=True,
                                          job_dir=tmp_path)
    assert result.ok and result.done == 3 and not result.failed


def test_failures_are_reported_and_the_rest_continue(pacs, tmp_path):
    pacs.down_for.add("ACC0002")
    result = Collector(pool_size=2, retry_delay=0).run("p", accessions(5) + ["NOPE"], pacs, None, MemoryArchive(),
                                        anonymize=True, job_dir=tmp_path)
    assert result.done == 4
    assert set(result.failed) == {"ACC0002", "NOPE"}
    assert "EndpointUnavailable" in result.failed["ACC0002"] and "NotFound" in result.failed["NOPE"]
    report = list(csv.reader(open(result.failure_report)))
    assert report[0] == ["AccessionNumber", "reason"] and len(report) == 3
    assert Journal(tmp_path / "journal.sqlite").counts() == {"done": 4, "failed": 2}


def test_dry_run_resolves_only(pacs, tmp_path):
    dest = MemoryArchive()
    result = Collector().run("p", accessions(3), pacs, None, dest, anonymize=True, job_dir=tmp_path, dry_run=True)
    assert result.done == 3 and dest.puts == 0


def test_worklist_from_csv_and_bad_rows(tmp_path):
    f = tmp_path / "w.csv"
    f.write_text("AccessionNumber\nA1\nA2\n")
    assert [d.sid() for d in read_worklist(str(f))] == ["A1", "A2"]
    assert [d.sid() for d in read_worklist(["X", {"AccessionNumber": "Y"}])] == ["X", "Y"]


def test_a_job_folder_is_locked_by_one_process_and_released_when_it_ends(tmp_path):
    import subprocess
    import sys

    from diana_core.errors import JobLocked
    from diana_core.usecases.jobfiles import JobLock

    job = tmp_path / "job"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from diana_core.usecases.jobfiles import "
                               f"JobLock; JobLock({str(job)!r}); print('locked', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(JobLocked, match=f"pid {holder.pid}"):
            JobLock(job)
    finally:
        holder.kill()  # like kill -9: the kernel releases the lock with the process
        holder.wait()
    lock = JobLock(job)
    assert (job / "lock").read_text().strip() == str(os.getpid())
    assert (job.stat().st_mode & 0o077) == 0 and ((job / "lock").stat().st_mode & 0o077) == 0
    lock.release()


def test_a_study_the_destination_holds_short_is_retried_then_failed_with_the_counts(pacs, tmp_path):
    class ShortArchive(MemoryArchive):
        def count_instances(self, item, level=None):  # the InstanceCounter port: one instance went missing
            oid = item.oid()
            return len(self.stored[oid]["instances"]) - 1 if oid in self.stored else 0

    study = next(iter(pacs.studies.values()))
    study["tags"]["NumberOfStudyRelatedInstances"] = str(len(study["instances"]))
    dest = ShortArchive()
    result = Collector(retries=1, retry_delay=0).run("short", [study["tags"]["AccessionNumber"]], pacs, None, dest,
                                                      anonymize=True, job_dir=tmp_path / "job")
    [(key, reason)] = result.failed.items()
    assert reason.startswith("IncompleteStudy") and f"holds 2 of the {len(study['instances'])}" in reason
    assert dest.puts == 2  # the first attempt and one retry pass


def test_a_rerun_skips_done_studies_from_one_journal_read(pacs, tmp_path, monkeypatch):
    """#32: a resumed 100k-study job paid a unit, three journal lookups and an audit fsync per done study before its
    first new one. Done studies are now skipped from one read of the journal: no unit, their audit lines written
    without a sync of their own (the finish line's fsync carries them)."""
    import diana_core.audit as audit
    from diana_core.usecases.executors import ThreadExecutor

    dest = MemoryArchive()
    Collector().run("p", accessions(4), pacs, None, dest, anonymize=True, job_dir=tmp_path)
    submitted, syncs = [], []
    real_submit, real_fsync = ThreadExecutor.submit, os.fsync
    monkeypatch.setattr(ThreadExecutor, "submit", lambda self, unit: (submitted.append(unit.key),
                                                                      real_submit(self, unit))[1])
    monkeypatch.setattr(audit.os, "fsync", lambda fd: (syncs.append(os.readlink(f"/proc/self/fd/{fd}")),
                                                       real_fsync(fd))[1])
    again = Collector(pool_size=2).run("p", accessions(6), pacs, None, dest, anonymize=True, job_dir=tmp_path)
    assert (again.skipped, again.done, again.ok) == (4, 2, True)
    assert sorted(submitted) == ["ACC0004", "ACC0005"]  # only the new studies became units
    audit_syncs = [p for p in syncs if p.endswith("audit.jsonl")]
    assert len(audit_syncs) == 4  # start, the 2 new studies, finish: none for the 4 skipped
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    second = [r for r in lines if r["run"] == lines[-1]["run"] and r["event"] == "item"]
    assert sorted(r["outcome"] for r in second) == ["done", "done", "skipped", "skipped", "skipped", "skipped"]
    assert all(r.get("study") for r in second)  # skipped lines still name the pseudonymized study
    assert dest.puts == 6
