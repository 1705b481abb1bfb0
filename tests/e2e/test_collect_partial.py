"""A study partly at the destination is not done: ``collect`` counts what the research Orthanc holds against what
the source reports, completes a short copy and writes every study's key row (#24, defect 3).

Real parts: a remote PACS Orthanc reached by C-FIND/C-MOVE through a proxy Orthanc, and a research Orthanc that a
``watch`` route (``upload_item`` with ``anonymize``, the same engine and key) has already fed part of the studies.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import requests

from diana_core import DicomLevel, Dixel
from diana_core.pseudonym import Pseudonymizer
from diana_core.usecases.routes import upload_item
from diana_orthanc import Orthanc
from diana_orthanc.testdata import ct_bytes
from diana_orthanc.testing import orthanc_workdir, start_orthanc

PER_STUDY = 6  # 2 series x 3 instances
PRELOADED = {0: 2, 1: 5, 2: PER_STUDY}  # study -> instances a watch route delivered before the collect job
STUDIES = 4  # study 3 is not at the destination at all


@pytest.fixture(scope="module")
def research():
    with orthanc_workdir("diana-research-partial-") as workdir:
        server = start_orthanc(workdir, "research", "RESEARCH")
        try:
            yield server
        finally:
            server.stop()


def instance(s: int, i: int) -> bytes:
    return ct_bytes(i % 3, study=s, series=i // 3, patient=s + 1, run="collect-partial")


def per_study_counts(server) -> dict[str, int]:
    session = requests.Session()
    session.auth = (server.user, server.password)
    return {oid: len(session.get(f"{server.url}/studies/{oid}/instances").json())
            for oid in session.get(f"{server.url}/studies").json()}


def test_collect_completes_studies_a_watch_route_left_partial_and_keys_every_study(clean_orthancs, research,
                                                                                    tmp_path):
    research.reset()
    session = requests.Session()
    session.auth = (clean_orthancs.remote.user, clean_orthancs.remote.password)
    for s in range(STUDIES):
        for i in range(PER_STUDY):
            session.post(f"{clean_orthancs.remote.url}/instances", data=instance(s, i)).raise_for_status()
    originals = []
    for oid in session.get(f"{clean_orthancs.remote.url}/studies").json():
        meta = session.get(f"{clean_orthancs.remote.url}/studies/{oid}").json()
        originals.append({**meta["PatientMainDicomTags"], **meta["MainDicomTags"]})
    dest = Orthanc(name="research", **{k: v for k, v in research.service_desc().items() if k != "ctype"})
    for s, n in PRELOADED.items():  # what `watch -r upload_item ... --anonymize` delivered of these studies
        for i in range(n):
            upload_item(Dixel(file=instance(s, i), level=DicomLevel.INSTANCES), dest=dest, anonymize=True)
    before = per_study_counts(research)
    assert sorted(before.values()) == sorted(PRELOADED.values())

    services = tmp_path / "services.json"
    services.write_text(json.dumps({
        "hospital": {"ctype": "ProxiedDicom", "proxy_desc": clean_orthancs.local.service_desc(),
                     "proxy_domain": "remote"},
        "research": research.service_desc(),
    }))
    worklist = tmp_path / "worklist.csv"
    worklist.write_text("AccessionNumber\n" + "".join(t["AccessionNumber"] + "\n" for t in originals))
    job = tmp_path / "job"
    proc = subprocess.run([sys.executable, "-m", "diana_core.cli", "-s", str(services), "--json", "collect",
                           str(worklist), "hospital", "research", "--job-dir", str(job)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    # the complete study is the only one skipped; the two short ones were completed, the absent one sent
    assert (summary["done"], summary["skipped"], summary["failed"]) == (3, 1, 0), summary
    assert summary["unverified"] == 0  # Orthanc counts what it holds

    after = per_study_counts(research)
    pseudo = Pseudonymizer()
    assert set(after) == {pseudo.predicted_oid({**t, "PatientSex": "O"}) for t in originals}
    assert set(before) <= set(after)  # completed in place, not sent as another study
    assert list(after.values()) == [PER_STUDY] * STUDIES  # every instance arrived, none twice
    rows = list(csv.DictReader(open(job / "key.csv", encoding="utf-8")))
    assert sorted(r["AccessionNumber"] for r in rows) == sorted(t["AccessionNumber"] for t in originals)

    again = subprocess.run([sys.executable, "-m", "diana_core.cli", "-s", str(services), "--json", "collect",
                            str(worklist), "hospital", "research", "--job-dir", str(tmp_path / "job2")],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["skipped"] == STUDIES  # a fresh job finds every study whole: all skipped
    assert len(list(csv.DictReader(open(tmp_path / "job2" / "key.csv", encoding="utf-8")))) == STUDIES
