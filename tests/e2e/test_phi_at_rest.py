"""Rows of docs/phi-at-rest.md not proved elsewhere: after a successful collect, identified data sits only in the
owner-only job folder; ``diana jobs purge`` removes a killed run's scratch and refuses while the job runs."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

from diana_orthanc.testdata import ct_dataset

IDENTIFIERS = (b"ACC00010000", b"ACC00020000", b"TESTPT0001", b"TESTPT0002", b"TEST^PATIENT0001")


def diana(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DIANA_SERVICES", "DIANA_LOG_FORMAT")}
    env.update(XDG_CONFIG_HOME=str(cwd / "config"), XDG_STATE_HOME=str(cwd / "state"))
    return subprocess.run([sys.executable, "-m", "diana_core", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_after_a_collect_identified_data_sits_only_in_the_owner_only_job_folder(tmp_path):
    (tmp_path / "pacs").mkdir()
    for p in (1, 2):
        for i in range(2):
            ct_dataset(i, patient=p, run="at-rest").save_as(tmp_path / "pacs" / f"{p}-{i}.dcm", enforce_file_format=True)
    (tmp_path / "wl.csv").write_text("AccessionNumber\nACC00010000\nACC00020000\nACC00090000\n")
    out = diana("collect", "wl.csv", "./pacs", "./research", "--anonymize", "--job-dir", "job", cwd=tmp_path)
    assert out.returncode == 1, out.stderr  # ACC00090000 is not in the PACS: failures.csv exists too
    job = tmp_path / "job"
    assert mode(job) == 0o700
    for name in ("key.csv", "failures.csv", "audit.jsonl", "job.json"):
        assert mode(job / name) == 0o600, name
    assert b"ACC00010000" in (job / "key.csv").read_bytes()  # the key is here, and only here
    assert not (job / "tmp").exists() or not [p for p in (job / "tmp").rglob("*") if p.is_file()]
    delivered = [p for p in (tmp_path / "research").rglob("*") if p.is_file()]
    assert len(delivered) == 4
    for f in delivered:
        assert not any(i in f.read_bytes() for i in IDENTIFIERS), f
        assert not any(i.decode() in str(f) for i in IDENTIFIERS), f
    for i in IDENTIFIERS:
        assert i.decode() not in out.stderr + out.stdout
        assert i not in (job / "audit.jsonl").read_bytes() and i not in (job / "job.json").read_bytes()


def test_jobs_purge_removes_the_scratch_and_is_refused_while_the_job_runs(tmp_path):
    from diana_core.usecases.jobfiles import JobLock

    job = tmp_path / "job"
    (job / "tmp" / "tmpkilled").mkdir(parents=True)
    left = job / "tmp" / "tmpkilled" / "study.zip"  # what kill -9 of a collect leaves in its job folder
    with zipfile.ZipFile(left, "w") as archive:
        archive.writestr("original.dcm", b"identified")
    (job / "key.csv").write_text("AccessionNumber\nA1\n")
    lock = JobLock(job)  # a collect running in the folder
    try:
        busy = diana("jobs", "purge", "job", cwd=tmp_path)
        assert busy.returncode == 1 and "in use by another diana process" in busy.stderr and left.exists()
    finally:
        lock.release()
    done = diana("jobs", "purge", "job", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "scratch removed True" in done.stdout and not (job / "tmp").exists()
    assert (job / "key.csv").read_text() == "AccessionNumber\nA1\n"  # the study's records stay
