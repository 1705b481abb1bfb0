"""MockStudy/Series/Instance: reproducible tags and bytes, valid DICOM files, unique valid UIDs, series plans."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
from datetime import datetime

import numpy as np
import pydicom
import pytest

from diana_core import DicomLevel
from diana_core.dicom import is_valid_uid
from diana_core.errors import ValidationError
from diana_mock import MockInstance, MockSeries, MockStudy, reset_mock_seed
from diana_mock.plans import series_plans

WHEN = datetime(2024, 3, 5, 9, 30, 0)
SOP = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "CR": "1.2.840.10008.5.1.4.1.1.1",
    "US": "1.2.840.10008.5.1.4.1.1.6.1",
}
SC = "1.2.840.10008.5.1.4.1.1.7"
EXPLICIT_LE = "1.2.840.10008.1.2.1"


@pytest.fixture(autouse=True)
def _seed() -> None:
    reset_mock_seed()


def small(modality: str, **kw) -> MockStudy:
    return MockStudy(study_datetime=WHEN, site_name="Mock Site", station_name="CT-1", modality=modality,
                     max_instances_per_series=kw.pop("max_instances_per_series", 4), **kw)


def test_same_seed_gives_identical_tags_and_file_bytes():
    first = [small(m) for m in ("CT", "MR", "CR", "US")]
    files1 = [i.gen_file() for s in first for i in s.instances()]
    reset_mock_seed()
    second = [small(m) for m in ("CT", "MR", "CR", "US")]
    files2 = [i.gen_file() for s in second for i in s.instances()]
    assert [s.tags for s in first] == [s.tags for s in second]
    assert [i.all_tags() for s in first for i in s.instances()] == [i.all_tags() for s in second for i in s.instances()]
    assert files1 == files2
    reset_mock_seed("another seed")
    other = small("CT")
    assert other.tags["StudyInstanceUID"] != first[0].tags["StudyInstanceUID"]
    assert other.tags["PatientID"] != first[0].tags["PatientID"]


def test_mock_prng_is_private():
    random.seed(1)
    expected = random.random()
    random.seed(1)
    small("CT")
    reset_mock_seed()
    assert random.random() == expected


def test_study_tags_and_description():
    study = small("MR")
    tags = study.tags
    for key in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber", "StudyInstanceUID",
                "StudyDate", "StudyTime", "StudyDescription", "InstitutionName", "StationName", "Modality",
                "ReferringPhysicianName"):
        assert tags.get(key), key
    assert tags["StudyDate"] == "20240305" and tags["StudyTime"] == "093000"
    assert tags["Modality"] == "MR" and tags["InstitutionName"] == "Mock Site" and tags["StationName"] == "CT-1"
    words = tags["StudyDescription"].split()
    assert words[0].startswith("IMG") and words[0][3:].isdigit() and words[1] == "MR"
    assert tags["StudyDescription"].endswith("CONTRAST")
    assert len(tags["PatientName"].split("^")) == 3 and tags["PatientSex"] in ("M", "F")
    assert tags["PatientBirthDate"] < tags["StudyDate"]
    assert study.level == DicomLevel.STUDIES and study.sid() == tags["AccessionNumber"]


def test_given_tags_override_generated_ones():
    study = MockStudy(study_datetime=WHEN, modality="CR", tags={"PatientID": "X1", "StudyDescription": "Mine"})
    assert study.tags["PatientID"] == "X1" and study.tags["StudyDescription"] == "Mine"
    assert study.instances()[0].all_tags()["PatientID"] == "X1"


def test_unknown_modality_is_a_validation_error():
    with pytest.raises(ValidationError, match="PET"):
        MockStudy(study_datetime=WHEN, modality="PET")


def test_tree_links_and_levels():
    study = small("CT")
    for n, series in enumerate(study.children, start=1):
        assert isinstance(series, MockSeries) and series.parent is study and series.level == DicomLevel.SERIES
        assert series.tags["SeriesNumber"] == n
        for k, inst in enumerate(series.children, start=1):
            assert isinstance(inst, MockInstance) and inst.parent is series and inst.level == DicomLevel.INSTANCES
            assert inst.tags["InstanceNumber"] == k
            assert inst.tag("AccessionNumber") == study.tags["AccessionNumber"]
    inst = study.instances()[-1]
    assert inst.oid().count("-") == 4 and inst.image_base_fn.startswith(study.tags["AccessionNumber"])


@pytest.mark.parametrize("modality", ["CT", "MR", "CR", "US"])
def test_every_file_is_valid_dicom(modality):
    study = small(modality, max_instances_per_series=2)
    for inst in study.instances():
        data = inst.gen_file()
        assert data[128:132] == b"DICM"
        ds = pydicom.dcmread(io.BytesIO(data))
        report = inst.parent.plan.kind == "report"
        assert ds.SOPClassUID == (SC if report else SOP[modality])
        assert ds.file_meta.TransferSyntaxUID == EXPLICIT_LE and not ds.is_implicit_VR
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID == inst.tags["SOPInstanceUID"]
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert ds.StudyInstanceUID == study.tags["StudyInstanceUID"] and ds.PatientID == study.tags["PatientID"]
        pixels = ds.pixel_array
        assert pixels.shape == ((192, 256) if report else (64, 64))  # dose screens: legible burned-in text
        expected = np.uint8 if modality == "US" or report else np.uint16
        assert pixels.dtype == expected and pixels.std() > 0
        if modality == "CT" and not report:
            assert ds.RescaleIntercept == -1024 and ds.RescaleSlope == 1


def test_ct_pixels_look_like_a_body_in_hounsfield_units():
    study = small("CT")
    volume = next(s for s in study.children if s.plan.kind == "volume")
    ds = pydicom.dcmread(io.BytesIO(volume.children[0].gen_file()))
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert hu[0, 0] < -900  # air outside the body
    assert hu.max() > 500  # bone
    assert -100 < np.median(hu[28:36, 29:35]) < 150  # soft tissue in the middle
    assert np.median(hu[28:36, 12:20]) < -600  # a lung (first slice is the chest end)


def test_gen_file_writes_the_same_bytes(tmp_path):
    inst = small("CR").instances()[0]
    target = tmp_path / "sub" / "x.dcm"
    data = inst.gen_file(target)
    assert target.read_bytes() == data
    dcmftest = shutil.which("dcmftest")
    assert dcmftest, "dcmtk missing: apt-get install dcmtk"
    out = subprocess.run([dcmftest, str(target)], capture_output=True, text=True)
    assert out.returncode == 0 and "yes" in out.stdout


def test_uids_valid_and_unique_across_large_study_and_many_studies():
    study = MockStudy(study_datetime=WHEN, modality="CT")  # full size: CT volumes of 30-200 images
    big = MockSeries(parent=study, ser_num=99, ser_desc="Big", n_instances=400)
    study.children.append(big)
    instances = study.instances()
    assert len(instances) > 400
    others = [small(m, max_instances_per_series=50) for m in ("CT", "MR", "CR", "US") * 3]
    uids = [study.tags["StudyInstanceUID"]] + [s.tags["StudyInstanceUID"] for s in others]
    uids += [s.tags["SeriesInstanceUID"] for st in [study, *others] for s in st.children]
    uids += [i.tags["SOPInstanceUID"] for st in [study, *others] for i in st.instances()]
    assert all(is_valid_uid(u) for u in uids)
    assert len(set(uids)) == len(uids)
    accessions = [s.tags["AccessionNumber"] for s in [study, *others]]
    assert len(set(accessions)) == len(accessions)


def _plans(modality, n=60, **kw):
    return [series_plans(modality, random.Random(i), **kw) for i in range(n)]


def test_ct_series_plan():
    for plan in _plans("CT"):
        descs = [p.description for p in plan]
        assert descs[:2] == ["Localizer", "Localizer"] and [p.n_instances for p in plan[:2]] == [1, 1]
        volumes = [p for p in plan if p.kind == "volume"]
        assert 1 <= len(volumes) <= 3 and all(30 <= p.n_instances <= 200 for p in volumes)
        assert all(p.description.startswith("Volume") for p in volumes)
        assert plan[-1].description == "Dose Report" and plan[-1].sop_class_uid == SC
        assert {p.kind for p in plan} <= {"localizer", "volume", "fluoro", "reformat", "report"}
    kinds = [{p.kind for p in plan} for plan in _plans("CT")]
    assert any("reformat" in k for k in kinds) and any("reformat" not in k for k in kinds)


def test_mr_cr_us_series_plans():
    for plan in _plans("MR"):
        locs = [p for p in plan if p.kind == "localizer"]
        seqs = [p for p in plan if p.kind == "sequence"]
        assert 1 <= len(locs) <= 3 and 3 <= len(seqs) <= 6 and all(10 <= p.n_instances <= 50 for p in seqs)
        assert len(plan) - len(locs) - len(seqs) in (0, 1)
    assert any(p.kind == "diffusion" for plan in _plans("MR") for p in plan)
    for plan in _plans("CR"):
        assert [p.description for p in plan] == ["PA", "Lateral"]
    for plan in _plans("US"):
        descs = [p.description for p in plan]
        assert descs[:3] == ["Transverse", "Sagittal", "Cine"] and set(descs[3:]) <= {"Doppler", "Bx"}


def test_scale_and_cap_shrink_series():
    for plan in _plans("CT", scale=0.1):
        assert all(p.n_instances <= 20 for p in plan) and all(p.n_instances >= 1 for p in plan)
    for plan in _plans("MR", max_instances=5):
        assert max(p.n_instances for p in plan) <= 5
