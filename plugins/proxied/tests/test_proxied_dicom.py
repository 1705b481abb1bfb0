"""ProxiedDicom through the real local Orthanc to the real remote one: C-ECHO, C-FIND, C-MOVE, date windows."""

from __future__ import annotations

import io
from datetime import datetime

import pytest

from diana_core import Dixel, load_services
from diana_core.dicom import DicomLevel, orthanc_id
from diana_core.errors import AuthenticationError, ValidationError
from diana_orthanc import Orthanc
from diana_orthanc.testdata import ct_dataset
from diana_proxied import ProxiedDicom, date_window_queries


def ct_at(when: datetime, run: str, n: int = 1) -> list[bytes]:
    """Instances of one study whose StudyDate/StudyTime is ``when``."""
    out = []
    for i in range(n):
        ds = ct_dataset(i, run=run)
        ds.StudyDate, ds.StudyTime = when.strftime("%Y%m%d"), when.strftime("%H%M%S")
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append(buf.getvalue())
    return out


def orthanc(server) -> Orthanc:
    return Orthanc(**{k: v for k, v in server.service_desc().items() if k != "ctype"})


@pytest.fixture
def proxied(clean_orthancs) -> ProxiedDicom:
    return load_services({"pacs": {"ctype": "ProxiedDicom", "proxy_desc": clean_orthancs.local.service_desc(),
                                   "proxy_domain": "remote"}})["pacs"]


def test_service_file_and_check(proxied, orthanc_local):
    assert isinstance(proxied, ProxiedDicom) and proxied.check() is True
    assert proxied.proxy.aet == "LOCAL"
    assert ProxiedDicom(proxy_desc=orthanc_local.service_desc(), proxy_domain="nowhere").check() is False
    bad = ProxiedDicom(proxy_desc={**orthanc_local.service_desc(), "password": "wrong"})
    with pytest.raises(AuthenticationError):
        bad.check()


def test_study_only_on_remote_is_found_and_retrieved(proxied, clean_orthancs):
    remote, local = orthanc(clean_orthancs.remote), orthanc(clean_orthancs.local)
    for data in ct_at(datetime(2021, 3, 4, 10, 0), "proxy", n=3):
        remote.put(data)
    ds = ct_dataset(0, run="proxy")
    found = proxied.find({"PatientID": ds.PatientID}, level=DicomLevel.STUDIES)
    assert [d.tags["StudyInstanceUID"] for d in found] == [ds.StudyInstanceUID]
    assert found[0].tags["AccessionNumber"] == ds.AccessionNumber
    assert found[0].oid() == orthanc_id(ds.PatientID, ds.StudyInstanceUID)
    assert local.inventory() == []
    retrieved = proxied.find({"StudyInstanceUID": ds.StudyInstanceUID}, retrieve=True)
    assert retrieved[0].meta["Retrieved"] is True
    assert local.inventory() == [found[0].oid()]
    assert local.statistics()["CountInstances"] == 3
    got = proxied.get(found[0])
    assert got.tags["StudyInstanceUID"] == ds.StudyInstanceUID
    assert proxied.delete(found[0]) is True
    assert local.inventory() == [] and remote.inventory() == [found[0].oid()]


def test_get_retrieves_when_missing_and_exists_queries_remote(proxied, clean_orthancs):
    remote = orthanc(clean_orthancs.remote)
    remote.put(ct_at(datetime(2021, 3, 4, 11, 0), "proxy-get")[0])
    ds = ct_dataset(0, run="proxy-get")
    series = Dixel(tags={"PatientID": ds.PatientID, "StudyInstanceUID": ds.StudyInstanceUID,
                         "SeriesInstanceUID": ds.SeriesInstanceUID}, level=DicomLevel.SERIES)
    assert proxied.exists(series) is True
    assert proxied.exists(Dixel(tags={"StudyInstanceUID": "1.2.3.999"})) is False
    got = proxied.get(series)
    assert got.oid() == orthanc_id(ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID)
    assert orthanc(clean_orthancs.local).exists(got)
    answers = proxied.find({"StudyInstanceUID": ds.StudyInstanceUID}, level="instances")
    assert [a.tags["SOPInstanceUID"] for a in answers] == [ds.SOPInstanceUID]
    with pytest.raises(ValidationError):
        proxied.exists(Dixel(tags={"Modality": "CT"}))


def test_date_window_across_midnight_finds_both_sides(proxied, clean_orthancs):
    remote = orthanc(clean_orthancs.remote)
    for when, run in [(datetime(2022, 5, 1, 23, 58), "before"), (datetime(2022, 5, 2, 0, 2), "after"),
                      (datetime(2022, 5, 2, 12, 0), "noon"), (datetime(2022, 5, 1, 23, 40), "early")]:
        remote.put(ct_at(when, run)[0])
    found = proxied.find_window(datetime(2022, 5, 1, 23, 55), datetime(2022, 5, 2, 0, 5))
    expected = {ct_dataset(0, run=r).StudyInstanceUID for r in ("before", "after")}
    assert {d.tags["StudyInstanceUID"] for d in found} == expected


def test_date_window_queries_split_per_day():
    assert date_window_queries(datetime(2022, 5, 1, 8, 0), datetime(2022, 5, 1, 9, 30)) == [
        {"StudyDate": "20220501", "StudyTime": "080000-093000"}]
    assert date_window_queries(datetime(2022, 5, 1, 23, 50), datetime(2022, 5, 2, 0, 10)) == [
        {"StudyDate": "20220501", "StudyTime": "235000-235959"}, {"StudyDate": "20220502", "StudyTime": "000000-001000"}]
    assert date_window_queries(datetime(2022, 5, 1, 12), datetime(2022, 5, 4, 1))[1] == {"StudyDate": "20220502-20220503"}
    with pytest.raises(ValueError):
        date_window_queries(datetime(2022, 5, 2), datetime(2022, 5, 1))
