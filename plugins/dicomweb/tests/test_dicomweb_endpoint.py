"""DicomWeb against a real Orthanc with its DICOMweb plugin: STOW -> QIDO -> WADO round trips, paging, batching,
partial failures, auth and error translation."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydicom
import pytest

from diana_core import Dixel, DixelView
from diana_core.dicom import DicomLevel
from diana_core.errors import AuthenticationError, EndpointUnavailable, NotFound, NotSupportedError, ValidationError
from diana_core.services import build_endpoint
from diana_dicomweb import DicomWeb, StowError, stow
from diana_dicomweb.testing import dicomweb_desc, dicomweb_url
from diana_orthanc.testdata import iter_ct_bytes
from diana_orthanc.testing import free_port
from diana_orthanc.testing import testfile_paths as pydicom_files


def endpoint(server, **extra) -> DicomWeb:
    desc = dicomweb_desc(server, **extra)
    return build_endpoint(desc.pop("ctype"), desc, service_name="dw")


def sop_uids(dw: DicomWeb) -> set[str]:
    return {str(d.tag("SOPInstanceUID")) for d in dw.find({}, level="instances")}


def test_stow_qido_wado_round_trip_gives_identical_instances(dicomweb_source):
    dw = endpoint(dicomweb_source)
    files = {pydicom.dcmread(p, stop_before_pixels=True, force=True).SOPInstanceUID: Path(p).read_bytes()
             for p in pydicom_files()}
    result = dw.put_many([Dixel(meta={"FileName": "x"}, file=data, level="instances") for data in files.values()])
    assert (result.done, result.failed) == (len(files), [])
    found = list(dw.find({}, level=DicomLevel.INSTANCES))
    assert {str(d.tag("SOPInstanceUID")) for d in found} == set(files)
    for dixel in found:
        got = dw.get(dixel, level="instances", view=DixelView.FILE)
        assert got.file == files[str(dixel.tag("SOPInstanceUID"))]  # byte for byte: WADO asked for transfer-syntax=*


def test_study_streamed_to_zip_and_folder_holds_every_instance(dicomweb_source, tmp_path):
    dw = endpoint(dicomweb_source, batch_count=7)
    sent = list(iter_ct_bytes(30, per_series=10, per_study=3, run="dw-zip"))
    assert dw.put_many(sent).done == 30
    [study] = list(dw.find({"AccessionNumber": "ACC00000000"}))
    got = dw.get(study, view=DixelView.FILE, dest=tmp_path / "study.zip")
    assert got.meta["Instances"] == 30
    with zipfile.ZipFile(tmp_path / "study.zip") as archive:
        assert sorted(archive.read(m) for m in archive.namelist()) == sorted(sent)
    series = next(iter(dw.find({"StudyInstanceUID": study.tag("StudyInstanceUID")}, level="series")))
    dw.get(series, level="series", view="file", dest=tmp_path / "series")
    assert len(list((tmp_path / "series").glob("*.dcm"))) == 10
    buf = io.BytesIO()
    dw.get(study.tag("StudyInstanceUID"), view="file", dest=buf)
    assert len(zipfile.ZipFile(buf).namelist()) == 30


def test_put_folder_and_zip_in_bounded_batches(dicomweb_source, tmp_path, monkeypatch):
    dw = endpoint(dicomweb_source, batch_count=4, batch_bytes=10**9)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, data in enumerate(iter_ct_bytes(10, run="dw-folder")):
        (folder / f"{i}.dcm").write_bytes(data)
    (folder / "notes.txt").write_text("not DICOM: ignored")
    with zipfile.ZipFile(tmp_path / "more.zip", "w") as archive:
        for i, data in enumerate(iter_ct_bytes(6, run="dw-zipped")):
            archive.writestr(f"d/{i}.dcm", data)
    posts = []
    original = stow.post_batch
    monkeypatch.setattr(stow, "post_batch", lambda session, url, batch, *a: posts.append(len(batch))
                        or original(session, url, batch, *a))
    result = dw.put(str(folder))
    assert result.done == 10 and sorted(posts) == [2, 4, 4]
    assert dw.put(Dixel(meta={"FileName": str(tmp_path / "more.zip")})).done == 6
    assert len(sop_uids(dw)) == 16


def test_partial_stow_failure_lists_the_failed_instance_and_stores_the_rest(dicomweb_source):
    dw = endpoint(dicomweb_source)
    good = list(iter_ct_bytes(3, run="dw-partial"))
    with pytest.raises(StowError) as info:
        dw.put(Dixel(file=b"garbage, not DICOM" * 20, level="instances"))
    assert "stored 0 of 1" in str(info.value)
    result = dw.put_many([*good, b"not a DICOM file" * 20])
    assert result.done == 3 and len(result.failed) == 1
    assert len(sop_uids(dw)) == 3


def test_find_pages_with_limit_offset_and_any_key(dicomweb_source):
    dw = endpoint(dicomweb_source, page_size=2)
    dw.put_many(iter_ct_bytes(5 * 2, per_series=1, per_study=2, run="dw-pages"))  # 5 studies of 2 series
    studies = list(dw.find({}))
    assert len(studies) == 5 and len({d.tag("StudyInstanceUID") for d in studies}) == 5
    assert [d.tag("StudyInstanceUID") for d in dw.find({}, limit=3, offset=1)] == \
        [d.tag("StudyInstanceUID") for d in studies[1:4]]
    assert len(list(dw.find({"Modality": "CT"}, level="series"))) == 10
    assert len(list(dw.find({"PatientID": "TESTPT*"}))) == 5
    assert list(dw.find({"AccessionNumber": "NO-SUCH"})) == []
    one = next(iter(dw.find({"StudyInstanceUID": studies[0].tag("StudyInstanceUID")}, fields=["StudyDescription"])))
    assert one.tag("StudyDescription") == "Synthetic CT"


def test_metadata_view_addressing_exists_and_404(dicomweb_source):
    dw = endpoint(dicomweb_source)
    data = next(iter(iter_ct_bytes(1, run="dw-meta")))
    sop = dw.put(Dixel(file=data, level="instances"))
    ds = pydicom.dcmread(io.BytesIO(data))
    assert sop == ds.SOPInstanceUID
    study = dw.get(ds.StudyInstanceUID, view="tags,meta")
    assert study.tag("PatientID") == "TESTPT0000" and study.tag("Rows") == 8
    assert study.oid() == Dixel(tags={"PatientID": "TESTPT0000", "StudyInstanceUID": ds.StudyInstanceUID}).oid()
    instance = dw.get(sop, level="instances", view="tags")  # a lone SOP UID is resolved with QIDO
    assert instance.tag("SeriesInstanceUID") == ds.SeriesInstanceUID
    assert dw.exists(ds.StudyInstanceUID) and dw.exists(f"{ds.StudyInstanceUID}/{ds.SeriesInstanceUID}", level="series")
    assert not dw.exists("1.2.3.999")
    with pytest.raises(NotFound):
        dw.get("1.2.3.999", view="file", dest="unused.zip")
    with pytest.raises(ValidationError):
        dw.get("../../system")


def test_delete_is_not_supported_by_orthanc_dicomweb(dicomweb_source):
    dw = endpoint(dicomweb_source)
    dw.put_many(iter_ct_bytes(1, run="dw-del"))
    [study] = list(dw.find({}))
    with pytest.raises(NotSupportedError, match="HTTP 405"):
        dw.delete(study)
    with pytest.raises(NotSupportedError):
        dw.delete("1.2.3.999", level="studies")
    assert len(list(dw.find({}))) == 1


def test_auth_failure_is_one_line_without_the_token(dicomweb_source, monkeypatch):
    token = "tok-" + "s3cr3t" * 5
    monkeypatch.setenv("DIANA_TEST_DW_TOKEN", token)
    dw = DicomWeb(name="dw", url=dicomweb_url(dicomweb_source), auth="bearer", token_env="DIANA_TEST_DW_TOKEN")
    assert dw._connect()[0].headers["Authorization"] == f"Bearer {token}"
    for call in (dw.check, lambda: list(dw.find({"PatientID": "X"})), lambda: dw.put_many(iter_ct_bytes(1))):
        with pytest.raises(AuthenticationError) as info:
            call()
        text = str(info.value)
        assert "HTTP 401" in text and "\n" not in text and token not in text and "PatientID" not in text
    wrong = endpoint(dicomweb_source, password="wrong-password")
    with pytest.raises(AuthenticationError, match="refused our credentials"):
        wrong.check()
    assert "wrong-password" not in repr(wrong) and "password" not in wrong.asdict()
    monkeypatch.delenv("DIANA_TEST_DW_TOKEN")
    unset = DicomWeb(name="dw", url=dicomweb_url(dicomweb_source), auth="bearer", token_env="DIANA_TEST_DW_TOKEN")
    with pytest.raises(Exception, match="DIANA_TEST_DW_TOKEN is not set"):
        unset.check()


def test_unreachable_server_is_unavailable_not_not_found():
    dw = DicomWeb(name="dw", url=f"http://127.0.0.1:{free_port()}/dicom-web", timeout=2, retries=0)
    assert dw.check() is False
    with pytest.raises(EndpointUnavailable):
        list(dw.find({}))
    with pytest.raises(EndpointUnavailable):
        dw.get("1.2.3", view="file", dest="x.zip")


def test_credentials_imply_basic_auth_and_auth_none_with_credentials_is_refused(dicomweb_source):
    """A user/password entry without ``auth`` logs in (it used to send nothing and report refused credentials)."""
    from diana_core.errors import ConfigError

    desc = dicomweb_desc(dicomweb_source)
    desc.pop("auth")
    implied = build_endpoint(desc.pop("ctype"), desc, service_name="dw")
    assert implied.auth == "basic" and implied.check() is True
    implied.put_many(iter_ct_bytes(1))
    assert len(sop_uids(implied)) == 1  # the instance arrived through the authenticated STOW and is found by QIDO
    anonymous = DicomWeb(name="dw", url=dicomweb_url(dicomweb_source))
    assert anonymous.auth == "none"
    with pytest.raises(AuthenticationError):
        anonymous.check()  # the fixture's Orthanc requires credentials: nothing was sent
    with pytest.raises(ConfigError, match="auth: none but user/password given") as info:
        endpoint(dicomweb_source, auth="none")
    assert dicomweb_source.password not in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="say which to send"):
        DicomWeb(name="dw", url=dicomweb_url(dicomweb_source), user="u", password="p", token="t")
