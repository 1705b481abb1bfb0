"""The Collector and the CLI with DicomWeb services: DICOMweb -> DICOMweb pseudonymized (QIDO resolve, WADO
retrieve, local pseudonymizing relay, STOW deliver), idempotent on rerun; diana check/put/find/get."""

from __future__ import annotations

import json
import zipfile

import pytest
from click.testing import CliRunner

from diana_core import Collector
from diana_core.cli import cli
from diana_core.services import build_endpoint
from diana_dicomweb import DicomWeb
from diana_dicomweb.testing import dicomweb_desc
from diana_orthanc.testdata import small_ct, write_small_ct


def endpoint(server) -> DicomWeb:
    desc = dicomweb_desc(server)
    return build_endpoint(desc.pop("ctype"), desc, service_name=server.name)


def instances(dw: DicomWeb) -> list:
    return list(dw.find({}, level="instances", fields=["PatientID", "AccessionNumber"]))


def load_study(dw: DicomWeb, accession: str, count: int, patient: str) -> None:
    import io

    parts = []
    for n in range(count):
        buf = io.BytesIO()
        small_ct(accession, n + 1, patient_id=patient, patient_name="Doe^Jane", PatientBirthDate="19800101",
                 PatientSex="F", StudyDate="20240102", StudyTime="080000").save_as(buf, enforce_file_format=True)
        parts.append(buf.getvalue())
    assert dw.put_many(parts).done == count


@pytest.fixture
def pseudonym_key(monkeypatch):
    monkeypatch.setenv("DIANA_PSEUDONYM_KEY", "dicomweb-test-key-0123456789abcdef")


def test_collect_dicomweb_to_dicomweb_pseudonymized_is_idempotent(dicomweb_source, dicomweb_dest, tmp_path,
                                                                    pseudonym_key):
    src, dst = endpoint(dicomweb_source), endpoint(dicomweb_dest)
    load_study(src, "DWACC1", 3, "PAT-1")
    load_study(src, "DWACC2", 4, "PAT-2")
    originals = {str(d.tag("SOPInstanceUID")) for d in instances(src)}

    result = Collector().run("dw", ["DWACC1", "DWACC2"], src, dest=dst, anonymize=True, job_dir=tmp_path / "job")
    assert result.ok, result.failed
    assert (result.done, result.instances) == (2, 7)
    delivered = instances(dst)
    uids = {str(d.tag("SOPInstanceUID")) for d in delivered}
    assert len(uids) == 7 and not uids & originals
    assert not {str(d.tag("PatientID")) for d in delivered} & {"PAT-1", "PAT-2"}
    assert not {str(d.tag("AccessionNumber")) for d in delivered} & {"DWACC1", "DWACC2"}

    again = Collector().run("dw", ["DWACC1", "DWACC2"], src, dest=dst, anonymize=True, job_dir=tmp_path / "job")
    assert (again.done, again.skipped, again.failed) == (0, 2, {})
    fresh = Collector().run("dw", ["DWACC1", "DWACC2"], src, dest=dst, anonymize=True, job_dir=tmp_path / "job2")
    assert (fresh.done, fresh.skipped, fresh.failed) == (0, 2, {})  # found on the destination by predicted UID
    assert {str(d.tag("SOPInstanceUID")) for d in instances(dst)} == uids


def test_collect_reports_a_missing_accession_and_continues(dicomweb_source, dicomweb_dest, tmp_path, pseudonym_key):
    src, dst = endpoint(dicomweb_source), endpoint(dicomweb_dest)
    load_study(src, "DWACC3", 2, "PAT-3")
    result = Collector().run("dw", ["DWACC3", "NOSUCH"], src, dest=dst, anonymize=True, job_dir=tmp_path / "job")
    assert result.done == 1 and list(result.failed) == ["NOSUCH"] and "NotFound" in result.failed["NOSUCH"]
    assert len(instances(dst)) == 2


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_cli_check_put_find_get_over_dicomweb(dicomweb_source, tmp_path, monkeypatch):
    desc = {**dicomweb_desc(dicomweb_source), "password": "${DW_PASSWORD}"}
    monkeypatch.setenv("DW_PASSWORD", dicomweb_source.password)
    bad = {**desc, "password": "not-the-password"}
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"dw": desc, "bad": bad}))
    s = ["-s", str(services)]
    for i in range(3):
        write_small_ct(tmp_path / "in" / f"{i}.dcm", "DWCLI", i + 1)

    assert run(*s, "check", "dw") == (0, "dw: ok\n")
    code, out = run(*s, "check", "bad")
    assert code == 1 and out.count("\n") == 1 and "refused our credentials" in out and "not-the-password" not in out
    code, out = run(*s, "put", "dw", str(tmp_path / "in"))
    assert code == 0 and "put 3, skipped 0, failed 0" in out, out
    code, out = run(*s, "--json", "find", "dw", "AccessionNumber=DWCLI")
    [study] = json.loads(out)
    uid = study["tags"]["StudyInstanceUID"]
    code, out = run(*s, "get", "dw", uid, "--view", "file", "-o", str(tmp_path / "out"))
    assert code == 0, out
    with zipfile.ZipFile(tmp_path / "out" / f"{uid}.zip") as archive:
        assert len(archive.namelist()) == 3
    code, out = run(*s, "get", "dw", "1.2.3.4.5")
    assert code == 1 and "not found" in out and dicomweb_source.password not in out
