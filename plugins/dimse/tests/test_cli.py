"""`diana check/find/get/put` against DICOM nodes named in a service file (dcmqrscp and Orthanc's DICOM port);
refusals are one line on stderr, no traceback."""

from __future__ import annotations

import json

import pydicom
from click.testing import CliRunner

from diana_core.cli import cli
from diana_dimse.testing import findscu_study_uids


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_check_find_get_put_through_a_service_file(dimse_pacs, clean_orthancs, tmp_path):
    local = clean_orthancs.local
    services = tmp_path / "services.json"
    services.write_text(json.dumps({
        "pacs": dimse_pacs.node_desc(receive_port=None, retrieve_method="get"),
        "orthanc-dicom": {"ctype": "DicomNode", "host": "127.0.0.1", "port": local.dicom_port, "aet": local.aet},
        "wrong": dimse_pacs.node_desc(aet="NOTPACS"),
    }))
    s = ["-s", str(services)]
    assert run(*s, "check", "pacs", "orthanc-dicom")[:2] == (0, "pacs: ok\northanc-dicom: ok\n")

    code, out, _ = run(*s, "--json", "find", "pacs", "AccessionNumber=ACC0000000*")
    studies = json.loads(out)
    assert code == 0 and sorted(d["tags"]["StudyInstanceUID"] for d in studies) == \
        sorted(findscu_study_uids(dimse_pacs.pacs.port, "PACS", {"AccessionNumber": "ACC0000000*"}))
    uid = studies[0]["tags"]["StudyInstanceUID"]

    code, out, _ = run(*s, "--json", "get", "pacs", uid, "--view", "file", "-o", str(tmp_path / "out"))
    assert code == 0 and json.loads(out)["meta"]["Instances"] == 6
    code, out, _ = run(*s, "put", "orthanc-dicom", str(tmp_path / "out"))
    assert code == 0 and "put 6, skipped 0, failed 0" in out

    code, out, err = run(*s, "find", "wrong", "AccessionNumber=ACC00000000")
    assert code == 1 and "Traceback" not in err and err.count("\n") == 1
    assert err.startswith("Error: DicomNode 'wrong': association for C-FIND") and "'NOTPACS'" in err
    code, out, _ = run(*s, "check", "wrong")
    assert code == 1 and "rejected" in out and "\n" not in out.strip()
    assert pydicom  # the files that went through are DICOM (Orthanc accepted them)
