"""#30 items 7 and 8 against the real Orthanc pair: the gateway's ``find``/``rfind`` take the original's Orthanc
body {"Level", "Query"} as well as a tag mapping, and ``Collector.make_key(ids, source, domain)`` resolves the
worklist on the source's modality ``domain`` (the study is only on the remote)."""

from __future__ import annotations

import pydicom
import pytest

from diana_core import Collector
from diana_core.dicom import DicomLevel, orthanc_id
from diana_core.errors import NotFound, ValidationError
from diana_orthanc import Orthanc
from diana_orthanc.gateway import OrthancGateway
from diana_orthanc.testdata import write_small_ct


def gw(server) -> OrthancGateway:
    return OrthancGateway(host=server.host, port=server.http_port, user=server.user, password=server.password,
                          aet=server.aet, name=server.name)


@pytest.fixture
def study(tmp_path) -> tuple[list[str], pydicom.Dataset]:
    paths = [str(tmp_path / f"im{n}.dcm") for n in range(2)]
    datasets = [write_small_ct(p, "P3ACC1", n) for n, p in enumerate(paths)]
    return paths, datasets[0]


def test_find_and_rfind_take_the_originals_body_form(clean_orthancs, study):
    paths, ds = study
    local, remote = gw(clean_orthancs.local), gw(clean_orthancs.remote)
    for path in paths:
        local.put(path)
        remote.put(path)
    oid = orthanc_id(ds.PatientID, ds.StudyInstanceUID)
    body = {"Level": "Study", "Query": {"AccessionNumber": "P3ACC1"}}
    assert local.find(body) == local.find({"AccessionNumber": "P3ACC1"}) == [oid]
    assert len(local.find({"Level": "Instance", "Query": {"AccessionNumber": "P3ACC1"}})) == 2
    assert local.find({"Level": "Study", "Query": {"AccessionNumber": "NOPE"}}) == []
    answers = local.rfind({"Level": "Study", "Query": {"AccessionNumber": "P3ACC1",
                                                                         "StudyInstanceUID": ""}}, "remote")
    assert [a["StudyInstanceUID"] for a in answers] == [ds.StudyInstanceUID]
    series = local.rfind({"Level": "Series", "Query": {"StudyInstanceUID": ds.StudyInstanceUID,
                                                       "SeriesInstanceUID": ""}}, "remote")
    assert len(series) == 1 and series[0]["SeriesInstanceUID"] == ds.SeriesInstanceUID
    assert answers == local.rfind({"AccessionNumber": "P3ACC1", "StudyInstanceUID": ""}, "remote")
    with pytest.raises(ValidationError, match="unknown key 'Levle'.*known keys: Level, Query"):
        local.find({"Levle": "Study", "Query": {"AccessionNumber": "P3ACC1"}})
    assert remote.find({"Level": "Study", "Query": {}}) == [oid]


def test_make_key_resolves_on_the_domain_of_an_orthanc_source(clean_orthancs, study):
    paths, ds = study
    remote = gw(clean_orthancs.remote)
    for path in paths:
        remote.put(path)
    source = Orthanc(**{k: v for k, v in clean_orthancs.local.service_desc().items() if k != "ctype"},
                     name="local")
    collector = Collector()
    with pytest.raises(NotFound):  # not on the local Orthanc itself
        collector.make_key(["P3ACC1"], source)
    rows = collector.make_key(["P3ACC1"], source, domain="remote")
    assert len(rows) == 1 and rows[0]["AccessionNumber"] == "P3ACC1"
    replacement = collector.pseudonymizer.replacement_map({"PatientID": ds.PatientID, "PatientName": "",
                                                           "StudyInstanceUID": ds.StudyInstanceUID,
                                                           "AccessionNumber": "P3ACC1"})
    assert rows[0]["PseudoStudyInstanceUID"] == replacement["StudyInstanceUID"] != ds.StudyInstanceUID
    assert source.gateway.inventory(DicomLevel.STUDIES) == []  # make_key moves nothing
