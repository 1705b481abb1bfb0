"""End to end: the Collector pulls studies by accession number from a real remote PACS (an Orthanc reached by
C-FIND/C-MOVE through the local Orthanc), pseudonymizes them, and delivers them to a third, real "research" Orthanc.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import requests

from diana_core.pseudonym import Pseudonymizer
from diana_core.usecases.collector import Collector
from diana_orthanc import Orthanc
from diana_orthanc.testdata import ct_bytes
from diana_orthanc.testing import orthanc_workdir, start_orthanc
from diana_proxied import ProxiedDicom

PER_STUDY = 6  # 2 series x 3 instances


@pytest.fixture(scope="module")
def research():
    with orthanc_workdir("diana-research-") as workdir:
        server = start_orthanc(workdir, "research", "RESEARCH")
        try:
            yield server
        finally:
            server.stop()


def seed_remote(remote, n_studies: int, run: str) -> list[dict]:
    """Store n studies (one patient each) on the remote PACS; returns their original identifiers."""
    session = requests.Session()
    session.auth = (remote.user, remote.password)
    for s in range(n_studies):
        for i in range(PER_STUDY):
            data = ct_bytes(i % 3, study=s, series=i // 3, patient=s + 1, run=run)
            session.post(f"{remote.url}/instances", data=data).raise_for_status()
    studies = []
    for oid in session.get(f"{remote.url}/studies").json():
        meta = session.get(f"{remote.url}/studies/{oid}").json()
        tags = {**meta["PatientMainDicomTags"], **meta["MainDicomTags"]}
        studies.append(tags)
    return sorted(studies, key=lambda t: t["AccessionNumber"])


def research_tags(research) -> tuple[set[str], str, int]:
    """(study ids, every instance's tags as one JSON text, instance count) on the research Orthanc."""
    session = requests.Session()
    session.auth = (research.user, research.password)
    studies = set(session.get(f"{research.url}/studies").json())
    instances = session.get(f"{research.url}/instances").json()
    text = json.dumps([session.get(f"{research.url}/instances/{i}/simplified-tags").json() for i in instances])
    return studies, text, len(instances)


def proxied(pair) -> ProxiedDicom:
    return ProxiedDicom(name="hospital", proxy_desc=pair.local.service_desc(), proxy_domain="remote")


def test_collect_by_accession_through_the_proxy_into_research_orthanc(clean_orthancs, research, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    research.reset()
    originals = seed_remote(clean_orthancs.remote, 3, run="collect-e2e")
    worklist = tmp_path / "worklist.csv"
    worklist.write_text("AccessionNumber\n" + "".join(t["AccessionNumber"] + "\n" for t in originals))

    dest = Orthanc(name="research", **{k: v for k, v in research.service_desc().items() if k != "ctype"})
    result = Collector(pool_size=2).run("e2e", str(worklist), proxied(clean_orthancs), None, dest, anonymize=True,
                                        job_dir=tmp_path / "job")

    assert result.ok, result.failed
    assert result.done == 3 and result.instances == 3 * PER_STUDY
    studies, text, count = research_tags(research)
    pseudo = Pseudonymizer()
    assert studies == {pseudo.predicted_oid({**t, "PatientSex": "O"}) for t in originals}
    assert count == 3 * PER_STUDY
    for tags in originals:
        for key in ("PatientID", "PatientName", "AccessionNumber", "StudyInstanceUID"):
            assert tags[key] not in text, f"original {key} left in the research copy"
    assert '"PatientBirthDate": "19700101"' not in text
    # the proxy keeps nothing: retrieved originals and anonymized copies were removed
    assert Orthanc(**{k: v for k, v in clean_orthancs.local.service_desc().items() if k != "ctype"}).gateway \
        .inventory() == []
    # no patient identifier reached the logs at INFO or above
    for tags in originals:
        for key in ("PatientID", "PatientName", "AccessionNumber", "StudyInstanceUID"):
            assert tags[key] not in caplog.text
    assert caplog.records, "the collector logs what it did"
    rows = list(csv.DictReader(open(result.key_file)))
    assert sorted(r["AccessionNumber"] for r in rows) == [t["AccessionNumber"] for t in originals]


def test_collect_killed_midway_resumes_without_loss_or_duplicates(clean_orthancs, research, tmp_path):
    research.reset()
    originals = seed_remote(clean_orthancs.remote, 6, run="collect-kill")
    worklist = tmp_path / "worklist.csv"
    worklist.write_text("AccessionNumber\n" + "".join(t["AccessionNumber"] + "\n" for t in originals))
    services = tmp_path / "services.json"
    services.write_text(json.dumps({
        "hospital": {"ctype": "ProxiedDicom", "proxy_desc": clean_orthancs.local.service_desc(),
                     "proxy_domain": "remote"},
        "research": research.service_desc(),
    }))
    job = tmp_path / "job"
    cmd = [sys.executable, "-m", "diana_core.cli", "-s", str(services), "collect", str(worklist), "hospital",
           "research", "--pool", "1", "--job-dir", str(job)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "first-run.log", "w"))
    deadline = time.monotonic() + 120
    done = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if (job / "journal.sqlite").exists():
            try:
                with sqlite3.connect(job / "journal.sqlite") as db:
                    done = db.execute("SELECT count(*) FROM items WHERE status = 'done'").fetchone()[0]
            except sqlite3.OperationalError:  # the collector is still creating its journal
                done = 0
            if done >= 2:
                break
        time.sleep(0.05)
    assert proc.poll() is None, (tmp_path / "first-run.log").read_text()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    studies_before, _, _ = research_tags(research)
    assert 2 <= len(studies_before) < 6

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    studies, _, count = research_tags(research)
    assert len(studies) == 6
    assert count == 6 * PER_STUDY  # nothing missing, nothing duplicated
    with sqlite3.connect(job / "journal.sqlite") as db:
        assert db.execute("SELECT count(*) FROM items WHERE status = 'done'").fetchone()[0] == 6
    # patient data at rest after kill -9 + rerun (docs/phi-at-rest.md): no original left on the proxy or in JOB/tmp
    assert Orthanc(**{k: v for k, v in clean_orthancs.local.service_desc().items() if k != "ctype"}).gateway \
        .inventory() == []
    assert not [p for p in (job / "tmp").rglob("*") if p.is_file()]


def test_montage_worklist_collected_from_the_pacs_into_a_pseudonymizing_folder(clean_orthancs, tmp_path):
    """Montage cannot run here: the worklist comes from FakeMontage (diana_montage.testing), a local HTTP server
    speaking Montage's documented search API. The PACS and its proxy are real Orthancs."""
    from diana_montage.testing import FakeMontage, make_reports

    originals = seed_remote(clean_orthancs.remote, 3, run="collect-montage")
    reports = make_reports(5)
    for report, tags in zip(reports, originals):
        report["accession_number"] = tags["AccessionNumber"]
        report["exam_type"]["modality"]["label"] = "CT"
    reports[3]["exam_type"]["modality"]["label"] = reports[4]["exam_type"]["modality"]["label"] = "MR"
    fake = FakeMontage(reports=reports).start()
    try:
        services = tmp_path / "services.json"
        services.write_text(json.dumps({
            "montage": fake.service_desc(),
            "hospital": {"ctype": "ProxiedDicom", "proxy_desc": clean_orthancs.local.service_desc(),
                         "proxy_domain": "remote"},
            "research": {"ctype": "DcmDir", "path": str(tmp_path / "research"), "anonymizing": True},
        }))
        proc = subprocess.run([sys.executable, "-m", "diana_core.cli", "-s", str(services), "--json", "collect",
                               "montage", "hospital", "research", "-q", "modality=CT", "--job-dir",
                               str(tmp_path / "job")], capture_output=True, text=True, timeout=300)
    finally:
        fake.stop()
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["studies"] == 3 and summary["done"] == 3 and summary["instances"] == 3 * PER_STUDY

    import pydicom

    from diana_dcmdir import DcmDir

    research = DcmDir(path=str(tmp_path / "research"))
    pseudo = Pseudonymizer()
    assert {d.oid() for d in research.find({}, level="studies")} == {pseudo.predicted_oid(t) for t in originals}
    files = [p for p in (tmp_path / "research").rglob("*.dcm")]
    assert len(files) == 3 * PER_STUDY
    for path in files:
        raw = path.read_bytes()
        for tags in originals:
            for key in ("PatientID", "PatientName", "AccessionNumber", "StudyInstanceUID"):
                assert tags[key].encode() not in raw
        assert pydicom.dcmread(path, stop_before_pixels=True).PatientIdentityRemoved == "YES"


def test_collect_into_one_pseudonymized_zip_per_study(tmp_path):
    """Folder PACS -> DcmDir(study_zips, anonymizing): one zip per study, named by the predicted study id."""
    import zipfile

    from diana_dcmdir import DcmDir
    from diana_orthanc.testdata import write_small_ct

    originals = []
    for s in range(3):
        for i in range(4):
            ds = write_small_ct(tmp_path / "pacs" / f"s{s}" / f"{i}.dcm", f"ZACC{s}", i + 1,
                                patient_id=f"ZP{s}", patient_name=f"ZIP^PATIENT{s}", PatientBirthDate="19800101",
                                PatientSex="M")
        originals.append({k: str(ds.get(k)) for k in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex",
                                                      "AccessionNumber", "StudyInstanceUID")})
    pacs = DcmDir(path=str(tmp_path / "pacs"))
    research = DcmDir(path=str(tmp_path / "research"), anonymizing=True, study_zips=True)
    result = Collector().run("zips", [t["AccessionNumber"] for t in originals], pacs, None, research,
                             anonymize=True, job_dir=tmp_path / "job")
    assert result.ok and result.done == 3 and result.instances == 12
    zips = sorted((tmp_path / "research").rglob("*.zip"))
    expected = sorted(f"{Pseudonymizer().predicted_oid(t)}.zip" for t in originals)
    assert sorted(z.name for z in zips) == expected
    for z in zips:
        with zipfile.ZipFile(z) as archive:
            assert len(archive.namelist()) == 4
            blob = b"".join(archive.read(n) for n in archive.namelist())
        for tags in originals:
            assert tags["PatientName"].encode() not in blob and tags["AccessionNumber"].encode() not in blob
    again = Collector().run("zips", [t["AccessionNumber"] for t in originals], pacs, None, research,
                            anonymize=True, job_dir=tmp_path / "job2")
    assert again.skipped == 3  # a fresh journal still finds them by predicted id


def test_folder_pacs_to_orthanc_pseudonymizes_in_a_local_relay(research, tmp_path):
    """Neither a DcmDir source nor an Orthanc destination pseudonymizes a whole study on its own: the collector
    relays the archive through a temporary pseudonymizing folder, so no original reaches the research Orthanc."""
    from diana_dcmdir import DcmDir
    from diana_orthanc.testdata import write_small_ct

    research.reset()
    originals = []
    for s in range(2):
        for i in range(3):
            ds = write_small_ct(tmp_path / "pacs" / f"s{s}" / f"{i}.dcm", f"RACC{s}", i + 1, patient_id=f"RP{s}",
                                patient_name=f"RELAY^PATIENT{s}", PatientBirthDate="19790101", PatientSex="F")
        originals.append({k: str(ds.get(k)) for k in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex",
                                                      "AccessionNumber", "StudyInstanceUID")})
    dest = Orthanc(name="research", **{k: v for k, v in research.service_desc().items() if k != "ctype"})
    result = Collector().run("relay", [t["AccessionNumber"] for t in originals], DcmDir(path=str(tmp_path / "pacs")),
                             None, dest, anonymize=True, job_dir=tmp_path / "job")
    assert result.ok and result.done == 2 and result.instances == 6
    studies, text, count = research_tags(research)
    assert studies == {Pseudonymizer().predicted_oid(t) for t in originals} and count == 6
    for tags in originals:
        assert tags["PatientName"] not in text and tags["AccessionNumber"] not in text
    assert not list((tmp_path / "job" / "tmp").rglob("*")), "the relay folder was removed"
