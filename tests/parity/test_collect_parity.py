"""The original collector's inputs (#15 item 3): a project folder holding ``{project}.studies.txt`` as data_path,
and ``run(..., source=orthanc, domain=MODALITY)`` querying and retrieving from that modality (real Orthanc pair:
local C-FINDs and C-MOVEs from remote)."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from diana_core.errors import ConfigError
from diana_core.usecases.collector import Collector, read_worklist
from diana_dcmdir import DcmDir
from diana_orthanc import Orthanc
from diana_orthanc.testdata import ct_bytes


def test_text_worklists_and_project_folders(tmp_path: Path):
    (tmp_path / "lung.studies.txt").write_text("\ufeffA1\n\n# a comment\nA2  \n", encoding="utf-8")
    assert [d.sid() for d in read_worklist(tmp_path, project="lung")] == ["A1", "A2"]
    assert [d.sid() for d in read_worklist(str(tmp_path / "lung.studies.txt"))] == ["A1", "A2"]
    (tmp_path / "other.csv").write_text("AccessionNumber\nB1\n", encoding="utf-8")
    assert [d.sid() for d in read_worklist(str(tmp_path), project="other")] == ["B1"]
    with pytest.raises(ConfigError, match="missing.studies.txt"):
        read_worklist(tmp_path, project="missing")


def test_collector_queries_the_domain_modality_of_an_orthanc_source(clean_orthancs, tmp_path):
    local, remote = clean_orthancs.local, clean_orthancs.remote
    session = requests.Session()
    session.auth = (remote.user, remote.password)
    for i in range(3):
        session.post(f"{remote.url}/instances", data=ct_bytes(i, study=0, series=0, patient=1, run="domain"))
    accession = session.get(f"{remote.url}/studies/{session.get(f'{remote.url}/studies').json()[0]}").json()[
        "MainDicomTags"]["AccessionNumber"]
    project = tmp_path / "project"
    project.mkdir()
    (project / "demo.studies.txt").write_text(f"{accession}\nNOT-THERE\n", encoding="utf-8")
    source = Orthanc(**{k: v for k, v in local.service_desc().items() if k != "ctype"}, name="local")
    dest = DcmDir(path=str(tmp_path / "out"))
    result = Collector().run("demo", project, source, domain="remote", dest=dest, job_dir=tmp_path / "job")
    assert result.done == 1 and len(result.failed) == 1  # the unknown accession number fails alone
    assert len(list(dest.index())) == 3  # the whole study arrived
    assert source.inventory("studies") == []  # the retrieved copy was released from the local Orthanc
