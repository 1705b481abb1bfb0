"""OrthancGateway against a real Orthanc pair: every REST method and the typed errors."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydicom
import pytest

from diana_core.dicom import DicomLevel, orthanc_id
from diana_core.errors import AuthenticationError, EndpointUnavailable, InvalidDicom, NotFound
from diana_orthanc.gateway import OrthancGateway
from diana_orthanc.testing import orthanc_workdir, start_orthanc


def gw(server, **kw) -> OrthancGateway:
    return OrthancGateway(host=server.host, port=server.http_port, user=server.user, password=server.password,
                          aet=server.aet, name=server.name, **kw)


@pytest.fixture
def ct(dicom_testfiles):
    path = next(p for p in dicom_testfiles if p.endswith("CT_small.dcm"))
    return path, pydicom.dcmread(path, stop_before_pixels=True)


def test_put_assigns_orthanc_id_and_second_put_is_already_stored(clean_orthancs, dicom_testfiles):
    g = gw(clean_orthancs.local)
    for path in dicom_testfiles:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
        answer = g.put(path)
        assert answer["ID"] == orthanc_id(ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        assert answer["ParentStudy"] == orthanc_id(ds.PatientID, ds.StudyInstanceUID)
    assert g.put(Path(dicom_testfiles[0]).read_bytes())["Status"] == "AlreadyStored"
    assert len(g.inventory(DicomLevel.INSTANCES)) == len(dicom_testfiles)
    assert g.statistics()["CountInstances"] == len(dicom_testfiles)


def test_get_views_find_and_metadata(clean_orthancs, ct):
    path, ds = ct
    g = gw(clean_orthancs.local)
    inst = g.put(path)["ID"]
    study = orthanc_id(ds.PatientID, ds.StudyInstanceUID)
    assert g.get(inst, DicomLevel.INSTANCES, "tags")["SOPInstanceUID"] == ds.SOPInstanceUID
    assert g.get(study, DicomLevel.STUDIES, "tags")["StudyInstanceUID"] == ds.StudyInstanceUID
    assert g.get(study, DicomLevel.STUDIES, "meta")["ID"] == study
    assert g.get(inst, DicomLevel.INSTANCES, "file") == Path(path).read_bytes()
    assert g.find({"PatientID": ds.PatientID}, DicomLevel.STUDIES) == [study]
    assert g.find({"PatientID": "nobody"}, DicomLevel.STUDIES) == []
    g.put_metadata(inst, DicomLevel.INSTANCES, "1024", "hello")
    assert g.get_metadata(inst, DicomLevel.INSTANCES, "1024") == "hello"
    assert "TransferSyntax" in g.get(inst, DicomLevel.INSTANCES, "metakv")


def test_archive_streams_to_path_and_file_object(clean_orthancs, ct, tmp_path):
    path, ds = ct
    g = gw(clean_orthancs.local)
    g.put(path)
    study = orthanc_id(ds.PatientID, ds.StudyInstanceUID)
    target = tmp_path / "study.zip"
    written = g.get_archive(study, DicomLevel.STUDIES, target)
    assert written == target.stat().st_size > 0
    with zipfile.ZipFile(target) as zf:
        assert len([n for n in zf.namelist() if not n.endswith("/")]) == 1
    buf = io.BytesIO()
    assert g.get_archive(study, "studies", buf) == written
    out = tmp_path / "one.dcm"
    g.get_file(g.inventory(DicomLevel.INSTANCES)[0], out)
    assert out.read_bytes() == Path(path).read_bytes()


def test_changes_pages(clean_orthancs, dicom_testfiles):
    g = gw(clean_orthancs.local)
    start = g.last_change()
    for p in dicom_testfiles[:3]:
        g.put(p)
    page = g.changes(start, limit=2)
    assert len(page["Changes"]) == 2 and page["Done"] is False
    rest = g.changes(page["Last"], limit=1000)
    assert rest["Done"] is True
    assert g.last_change() == rest["Last"] > start


def test_modify_and_anonymize(clean_orthancs, ct):
    path, ds = ct
    g = gw(clean_orthancs.local)
    g.put(path)
    study = orthanc_id(ds.PatientID, ds.StudyInstanceUID)
    modified = g.modify(study, DicomLevel.STUDIES, {"StudyDescription": "changed"})
    assert g.get(modified["ID"], DicomLevel.STUDIES, "tags")["StudyDescription"] == "changed"
    anon = g.anonymize(study, DicomLevel.STUDIES, {"PatientID": "ANON1", "StudyInstanceUID": "1.2.3.4"})
    assert anon["ID"] == orthanc_id("ANON1", "1.2.3.4")
    inst_mod = g.modify(g.inventory(DicomLevel.INSTANCES)[0], DicomLevel.INSTANCES, {"InstanceNumber": "42"})
    assert inst_mod["Status"] in ("Success", "AlreadyStored")


def test_delete_then_not_found(clean_orthancs, ct):
    path, ds = ct
    g = gw(clean_orthancs.local)
    inst = g.put(path)["ID"]
    g.delete(inst, DicomLevel.INSTANCES)
    with pytest.raises(NotFound, match=inst):
        g.get(inst, DicomLevel.INSTANCES, "meta")
    with pytest.raises(NotFound):
        g.delete(inst, DicomLevel.INSTANCES)


def test_recho_rfind_retrieve_and_send(clean_orthancs, ct):
    path, ds = ct
    local, remote = gw(clean_orthancs.local), gw(clean_orthancs.remote)
    assert local.recho("remote") is True
    remote.put(path)
    answers = local.rfind({"PatientID": ds.PatientID, "StudyInstanceUID": ""}, "remote", DicomLevel.STUDIES)
    assert [a["StudyInstanceUID"] for a in answers] == [ds.StudyInstanceUID]
    assert local.inventory() == []
    local.rfind({"StudyInstanceUID": ds.StudyInstanceUID}, "remote", "study", retrieve=True)
    study = orthanc_id(ds.PatientID, ds.StudyInstanceUID)
    assert local.inventory() == [study]
    remote.delete(study, DicomLevel.STUDIES)
    local.send(study, "remote", "peers")
    assert remote.inventory() == [study]
    remote.delete(study, DicomLevel.STUDIES)
    local.send(study, "remote", "modalities")
    assert remote.inventory() == [study]


def test_reset_keeps_data(clean_orthancs, ct):
    g = gw(clean_orthancs.local)
    g.put(ct[0])
    g.reset()
    assert len(g.inventory()) == 1


def test_invalid_file_is_invalid_dicom(orthanc_local):
    with pytest.raises(InvalidDicom):
        gw(orthanc_local).put(b"not a dicom file at all")


def test_wrong_password_is_authentication_error_without_password(orthanc_local):
    g = OrthancGateway(host=orthanc_local.host, port=orthanc_local.http_port, user=orthanc_local.user,
                       password="wrong-secret-xyz", name="local")
    with pytest.raises(AuthenticationError) as err:
        g.statistics()
    assert "local" in str(err.value) and "wrong-secret-xyz" not in str(err.value)
    assert orthanc_local.password not in str(err.value)


def test_stopped_server_is_endpoint_unavailable():
    with orthanc_workdir() as workdir:
        server = start_orthanc(workdir, "short-lived", "SHORT")
        try:
            _check_stop(server)
        finally:
            server.stop()


def _check_stop(server):
    g = gw(server, retries=1, backoff=0.01)
    assert g.system()["DicomAet"] == "SHORT"
    server.stop()
    with pytest.raises(EndpointUnavailable, match="unreachable"):
        g.system()
    with pytest.raises(EndpointUnavailable):
        g.put(b"x")
