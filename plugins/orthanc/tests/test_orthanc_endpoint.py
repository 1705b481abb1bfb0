"""Orthanc endpoint against a real Orthanc pair: CRUD over Dixels at every level, views, anonymize, send, bulk."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest

from diana_core import Dixel, DixelView, load_services
from diana_core.dicom import DicomLevel, orthanc_id
from diana_core.errors import AuthenticationError, EndpointUnavailable, NotFound, ValidationError
from diana_core.pseudonym import Pseudonymizer
from diana_orthanc import ObservableOrthanc, Orthanc
from diana_orthanc.testdata import iter_ct_bytes, write_ct_instances

LEVELS = [DicomLevel.PATIENTS, DicomLevel.STUDIES, DicomLevel.SERIES, DicomLevel.INSTANCES]


@pytest.fixture
def local(clean_orthancs) -> Orthanc:
    return Orthanc(**{k: v for k, v in clean_orthancs.local.service_desc().items() if k != "ctype"}, name="local")


@pytest.fixture
def ct(dicom_testfiles):
    path = next(p for p in dicom_testfiles if p.endswith("CT_small.dcm"))
    ds = pydicom.dcmread(path)
    return Dixel.from_pydicom(ds, fn=path, file=Path(path).read_bytes())


def ids(d: Dixel) -> list[str]:
    return [d.tags["PatientID"], d.tags["StudyInstanceUID"], d.tags["SeriesInstanceUID"], d.tags["SOPInstanceUID"]]


def test_service_file_builds_orthanc_and_observable(orthanc_local):
    services = load_services({
        "pacs": orthanc_local.service_desc(),
        "watch": orthanc_local.service_desc(ctype="ObservableOrthanc", start_from_change=0, persist_file="x.json"),
    })
    assert isinstance(services["pacs"], Orthanc) and services["pacs"].check() is True
    assert isinstance(services["watch"], ObservableOrthanc) and services["watch"].start_from_change == 0
    assert orthanc_local.password not in repr(services["pacs"])


def test_put_returns_the_computed_orthanc_id(local, ct):
    assert local.put(ct) == ct.oid() == orthanc_id(*ids(ct))
    assert Orthanc().password is None and Orthanc().user is None


def test_get_every_level_and_views(local, ct, tmp_path):
    local.put(ct)
    for n, level in enumerate(LEVELS, start=1):
        oid = orthanc_id(*ids(ct)[:n])
        d = local.get(oid, level=level, view=DixelView.TAGS)
        assert d.oid() == oid and d.level == level
        assert d.tags["PatientID"] == ct.tags["PatientID"]
        assert local.exists(Dixel(meta={"ID": oid}, level=level))
    study = local.get(orthanc_id(*ids(ct)[:2]), level=DicomLevel.STUDIES, view=DixelView.META | DixelView.TAGS | DixelView.METAKV)
    assert study.meta["Type"] == "Study" and "LastUpdate" in study.meta["Metadata"]
    assert study.tags["StudyInstanceUID"] == ct.tags["StudyInstanceUID"]
    inst = local.get(ct.oid(), level=DicomLevel.INSTANCES, view=DixelView.TAGS_FILE)
    assert inst.file == ct.file and inst.tags["SOPInstanceUID"] == ct.tags["SOPInstanceUID"]
    with pytest.raises(ValidationError, match="dest"):
        local.get(study, view=DixelView.FILE)
    zipped = local.get(study, view=DixelView.FILE, dest=tmp_path / "s.zip")
    assert Path(zipped.fn).stat().st_size > 1000
    buf = io.BytesIO()
    local.get(study, view="file", dest=buf)
    assert buf.getvalue()[:2] == b"PK"


def test_find_at_levels(local, ct):
    local.put(ct)
    found = local.find({"PatientID": ct.tags["PatientID"]}, level=DicomLevel.STUDIES)
    assert [d.oid() for d in found] == [orthanc_id(*ids(ct)[:2])]
    assert found[0].tags["StudyInstanceUID"] == ct.tags["StudyInstanceUID"]
    series = local.find(Dixel(tags={"Modality": "CT"}), level="series")
    assert [d.oid() for d in series] == [orthanc_id(*ids(ct)[:3])]
    assert local.find({"PatientID": "nobody"}) == []


def test_update_metadata_and_tags(local, ct):
    local.put(ct)
    inst = Dixel(meta={"ID": ct.oid()}, level=DicomLevel.INSTANCES)
    local.update(inst, {"1025": "reviewed"})
    assert local.get_metadata(inst, "1025") == "reviewed"
    local.put_metadata(inst, "1026", 7)
    assert local.get_metadata(inst, "1026") == "7"
    assert local.get_metadata(inst)["1026"] == "7"
    local.meta_keys = ["1025"]
    assert local.get(inst, view=DixelView.META).meta["1025"] == "reviewed"
    study = local.get(orthanc_id(*ids(ct)[:2]), level=DicomLevel.STUDIES)
    changed = local.update(study, {"StudyDescription": "Updated"}, kind="tags")
    assert changed.tags["StudyDescription"] == "Updated" and changed.oid() != study.oid()


def test_delete_and_not_found(local, ct):
    local.put(ct)
    assert local.delete(ct) is True
    assert local.exists(ct) is False
    assert local.delete(ct) is False
    with pytest.raises(NotFound, match=ct.oid()):
        local.get(ct, level=DicomLevel.INSTANCES)


def test_anonymize_gives_predicted_id_and_drops_identifiers(local, ct):
    local.put(ct)
    study = local.get(orthanc_id(*ids(ct)[:2]), level=DicomLevel.STUDIES, view=DixelView.TAGS)
    expected = Pseudonymizer().predicted_oid(study.tags, DicomLevel.STUDIES)
    anon = local.anonymize(study, level=DicomLevel.STUDIES)
    assert anon.oid() == expected and local.exists(anon)
    anon_inst = local.find({"PatientID": anon.tags["PatientID"]}, level=DicomLevel.INSTANCES)
    assert len(anon_inst) == 1
    tags = local.get(anon_inst[0], view=DixelView.TAGS).tags
    original = {k: str(ct.tags[k]) for k in ("PatientID", "PatientName", "AccessionNumber", "StudyInstanceUID",
                                             "PatientBirthDate") if ct.tags.get(k)}
    values = {str(v) for v in tags.values()}
    assert not set(original.values()) & values, "an original identifier survived anonymization"
    assert tags["PatientID"] == anon.tags["PatientID"]


def test_instance_level_anonymize_stores_the_copy_with_the_predicted_id(local, ct):
    oid = local.put(ct)
    inst = local.get(oid, level=DicomLevel.INSTANCES, view=DixelView.TAGS)
    expected = Pseudonymizer().predicted_oid(inst.tags, DicomLevel.INSTANCES)
    anon = local.anonymize(inst, level=DicomLevel.INSTANCES)
    assert anon.oid() == expected != oid
    assert local.exists(expected, level=DicomLevel.INSTANCES) and local.exists(oid, level=DicomLevel.INSTANCES)
    assert anon.tags["PatientID"] != inst.tags["PatientID"]


def test_send_to_peer_and_modality(local, clean_orthancs, ct):
    remote = Orthanc(**{k: v for k, v in clean_orthancs.remote.service_desc().items() if k != "ctype"})
    local.put(ct)
    local.send(ct, dest="remote", dest_type="peers")
    assert remote.exists(ct, level=DicomLevel.INSTANCES)
    remote.delete(ct)
    local.send(Dixel(meta={"ID": orthanc_id(*ids(ct)[:2])}), dest="remote", dest_type="modalities")
    assert remote.exists(ct, level=DicomLevel.INSTANCES)


def test_put_many_counts_done_skipped_failed(local, tmp_path):
    paths = write_ct_instances(tmp_path, 12, per_series=6)
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"garbage")
    seen = []
    result = local.put_many([*paths, bad, tmp_path / "missing.dcm"], workers=3,
                            progress=lambda n, total: seen.append((n, total)))
    assert (result.done, result.skipped) == (12, 0)
    assert sorted(name for name, _ in result.failed) == ["bad.dcm", "missing.dcm"]
    assert seen[-1] == (14, 14)
    dixels = [Dixel(file=b, level=DicomLevel.INSTANCES) for b in iter_ct_bytes(12, per_series=6)]
    again = local.put_many(iter(dixels), workers=2)
    assert (again.done, again.skipped, again.failed) == (0, 12, [])
    assert local.statistics()["CountInstances"] == 12


def test_check_and_typed_errors(orthanc_local):
    desc = {k: v for k, v in orthanc_local.service_desc().items() if k != "ctype"}
    bad = Orthanc(**{**desc, "password": "not-the-password"}, name="pacs")
    with pytest.raises(AuthenticationError, match="pacs") as err:
        bad.exists("0000")
    assert "not-the-password" not in str(err.value)
    gone = Orthanc(**{**desc, "port": 1}, name="gone")
    assert gone.check() is False
    with pytest.raises(EndpointUnavailable):
        gone.exists("0000")
    assert Orthanc(**desc).exists("no-such-id") is False


def test_remote_find_retrieve_inventory_and_changes(local, clean_orthancs, ct):
    remote = Orthanc(**{k: v for k, v in clean_orthancs.remote.service_desc().items() if k != "ctype"})
    remote.put(ct)
    start = local.gateway.last_change()
    answers = local.find({"PatientID": ct.tags["PatientID"], "StudyInstanceUID": ""}, domain="remote")
    assert [a.oid() for a in answers] == [orthanc_id(*ids(ct)[:2])] and local.inventory() == []
    local.find({"StudyInstanceUID": ct.tags["StudyInstanceUID"]}, domain="remote", retrieve=True)
    assert local.inventory() == [orthanc_id(*ids(ct)[:2])]
    assert local.inventory(DicomLevel.INSTANCES) == [ct.oid()]
    page = local.change_log(start, 100)
    assert {c["ChangeType"] for c in page["Changes"]} >= {"NewInstance", "NewSeries", "NewStudy"}
