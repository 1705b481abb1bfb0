"""The Collector with a DicomNode source: resolve by accession number on dcmqrscp (C-FIND), retrieve (C-MOVE to
our receiver), pseudonymize locally, deliver to a research Orthanc and, through `diana collect`, into a folder;
reruns skip what is done without moving anything again."""

from __future__ import annotations

import json

import pydicom
import requests
from click.testing import CliRunner

from diana_core import load_services
from diana_core.cli import cli
from diana_core.pseudonym import Pseudonymizer
from diana_core.usecases.collector import Collector
from diana_orthanc import Orthanc

ORIGINAL_IDS = {"PT000000", "PT000001", "ACC00000000", "ACC00000001"}


def test_collect_from_dcmqrscp_into_orthanc_pseudonymized_and_rerun_idempotent(dimse_pacs, clean_orthancs,
                                                                              tmp_path, monkeypatch):
    monkeypatch.setenv("DIANA_PSEUDONYM_KEY", "dimse-collect-key")
    research_srv = clean_orthancs.local
    research = Orthanc(name="research", **{k: v for k, v in research_srv.service_desc().items() if k != "ctype"})
    node = load_services({"pacs": dimse_pacs.node_desc()})["pacs"]
    worklist = tmp_path / "worklist.csv"
    worklist.write_text("AccessionNumber\nACC00000000\nACC00000001\nACC99999999\n")
    try:
        result = Collector(pool_size=2, retries=0).run("dimse", str(worklist), node, None, research, anonymize=True,
                                                      job_dir=tmp_path / "job")
        assert result.done == 2 and result.instances == 12 and list(result.failed) == ["ACC99999999"]
        assert result.failed["ACC99999999"].startswith("NotFound")
        moved = node.receiver().received
        assert moved == 12

        session = requests.Session()
        session.auth = (research_srv.user, research_srv.password)
        studies = set(session.get(f"{research_srv.url}/studies").json())
        originals = [next(iter(node.find({"AccessionNumber": a}))).tags for a in ("ACC00000000", "ACC00000001")]
        pseudo = Pseudonymizer(key="dimse-collect-key")
        assert studies == {pseudo.predicted_oid(t) for t in originals}  # ids known before sending
        instances = session.get(f"{research_srv.url}/instances").json()
        assert len(instances) == 12
        for oid in instances:
            tags = session.get(f"{research_srv.url}/instances/{oid}/simplified-tags").json()
            assert not ORIGINAL_IDS & {tags.get("PatientID"), tags.get("AccessionNumber")}
            assert "PATIENT00" not in tags.get("PatientName", "")

        again = Collector(pool_size=2, retries=0).run("dimse", str(worklist), node, None, research, anonymize=True,
                                                     job_dir=tmp_path / "job")
        assert again.done == 0 and again.skipped == 2 and node.receiver().received == moved  # nothing moved again
        assert len(session.get(f"{research_srv.url}/instances").json()) == 12
    finally:
        node.close()


def test_diana_collect_from_dcmqrscp_into_a_pseudonymizing_folder(dimse_pacs, tmp_path, monkeypatch):
    monkeypatch.setenv("DIANA_PSEUDONYM_KEY", "dimse-collect-key")
    services = tmp_path / "services.json"
    services.write_text(json.dumps({
        "pacs": dimse_pacs.node_desc(receive_port=None, retrieve_method="get"),
        "research": {"ctype": "DcmDir", "path": str(tmp_path / "research"), "anonymizing": True},
    }))
    worklist = tmp_path / "worklist.csv"
    worklist.write_text("AccessionNumber\nACC00000000\nACC00000001\n")
    args = ["-s", str(services), "--json", "collect", str(worklist), "pacs", "research", "--job-dir",
            str(tmp_path / "job")]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout)
    assert summary["done"] == 2 and summary["instances"] == 12 and summary["failed"] == 0
    files = [p for p in (tmp_path / "research").rglob("*") if p.is_file() and p.suffix != ".sqlite"]
    dicoms = [pydicom.dcmread(p, stop_before_pixels=True) for p in files if not p.name.startswith(".")]
    dicoms = [d for d in dicoms if "SOPInstanceUID" in d]
    assert len(dicoms) == 12
    for ds in dicoms:
        assert ds.PatientIdentityRemoved == "YES" and not ORIGINAL_IDS & {ds.PatientID, ds.AccessionNumber}
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0 and json.loads(second.stdout)["skipped"] == 2


def test_collect_from_dcmqrscp_into_a_dicom_node_destination_and_rerun_skips(dimse_pacs, tmp_path, monkeypatch):
    """The destination is itself a DicomNode (the research Orthanc reached only by DICOM: C-STORE to deliver,
    C-FIND by the pseudonymized StudyInstanceUID to know a study is already there): the rerun moves nothing."""
    monkeypatch.setenv("DIANA_PSEUDONYM_KEY", "dimse-collect-key")
    from diana_dimse.testing import free_port
    from diana_orthanc.testing import start_orthanc

    research_srv = start_orthanc(tmp_path, "research", "RESEARCH",  # it answers C-FIND only from AEs it knows
                                 modalities={"diana": ("DIANA", "127.0.0.1", free_port())})
    source = load_services({"pacs": dimse_pacs.node_desc()})["pacs"]
    dest = load_services({"research": {"ctype": "DicomNode", "host": "127.0.0.1", "port": research_srv.dicom_port,
                                       "aet": research_srv.aet, "calling_aet": "DIANA", "timeout": 20}})["research"]
    worklist = tmp_path / "worklist.csv"
    worklist.write_text("AccessionNumber\nACC00000000\nACC00000001\n")
    try:
        result = Collector(pool_size=2, retries=0).run("dimse", str(worklist), source, None, dest, anonymize=True,
                                                      job_dir=tmp_path / "job")
        assert result.done == 2 and result.instances == 12 and not result.failed
        session = requests.Session()
        session.auth = (research_srv.user, research_srv.password)
        instances = session.get(f"{research_srv.url}/instances").json()
        assert len(instances) == 12
        originals = [next(iter(source.find({"AccessionNumber": a}))).tags for a in ("ACC00000000", "ACC00000001")]
        pseudo = Pseudonymizer(key="dimse-collect-key")
        assert set(session.get(f"{research_srv.url}/studies").json()) == {pseudo.predicted_oid(t) for t in originals}
        moved = source.receiver().received
        again = Collector(pool_size=2, retries=0).run("dimse", str(worklist), source, None, dest, anonymize=True,
                                                     job_dir=tmp_path / "job2")  # a new job: only C-FIND can tell
        assert again.done == 0 and again.skipped == 2 and source.receiver().received == moved
        assert len(session.get(f"{research_srv.url}/instances").json()) == 12
    finally:
        source.close()
        dest.close()
        research_srv.stop()
