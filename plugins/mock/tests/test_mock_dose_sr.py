"""Dose reports (#15 item 2): ``dicom_simplify`` gives the original DIANA's nested shape on the mock plugin's X-Ray
Radiation Dose SR, on pydicom's own SR files, and on the tags a real Orthanc answers for the uploaded report."""

from __future__ import annotations

import io
from datetime import datetime

import pydicom
import pytest
from pydicom.data import get_testdata_file

from diana_core import Dixel
from diana_core.dicom import DicomLevel
from diana_mock import MockStudy, reset_mock_seed
from diana_mock.dose_sr import XRAY_DOSE_SR, dose_report, dose_report_dixel

TITLE = "X-Ray Radiation Dose Report"


@pytest.fixture
def study() -> MockStudy:
    reset_mock_seed("dose")
    return MockStudy(modality="CT", study_datetime=datetime(2024, 3, 5, 8, 0, 0))


def assert_original_dose_shape(tags: dict, acquisitions: int) -> None:
    """The keys dose dashboards search on (the original's dose_tags_anon.simple.json)."""
    assert "ContentSequence" not in tags and "ConceptNameCodeSequence" not in tags and "ContentDate" not in tags
    report = tags[TITLE]
    assert isinstance(report["ContentDateTime"], datetime)
    assert report["Observer Type"] == "Device" and report["Scope of Accumulation"] == "Study"
    assert isinstance(report["Start of X-Ray Irradiation"], datetime)
    acq = report["CT Acquisition"]
    assert isinstance(acq, list) and len(acq) == acquisitions  # a single acquisition is a list of one too
    dose = acq[0]["CT Dose"]
    assert isinstance(dose["Mean CTDIvol"], float) and isinstance(dose["DLP"], float)
    assert isinstance(acq[0]["CT Acquisition Parameters"]["CT X-Ray Source Parameters"]["KVP"], float)
    total = report["CT Accumulated Dose Data"]["CT Dose Length Product Total"]
    assert total == pytest.approx(sum(a["CT Dose"]["DLP"] for a in acq), abs=0.2)
    assert report["CT Accumulated Dose Data"]["Total Number of Irradiation Events"] == float(acquisitions)
    assert tags["StationName"]  # from DeviceSerialNumber when the report names no station


@pytest.mark.parametrize("acquisitions", [1, 3])
def test_mock_dose_sr_is_valid_dicom_and_simplifies_to_the_original_shape(study, acquisitions):
    d = dose_report_dixel(study, acquisitions=acquisitions)
    ds = pydicom.dcmread(io.BytesIO(d.file))
    assert ds.SOPClassUID == XRAY_DOSE_SR and ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.StudyInstanceUID == study.tags["StudyInstanceUID"] and d.level == DicomLevel.INSTANCES
    assert_original_dose_shape(d.tags, acquisitions)
    assert d.tags["StationName"] == ds.DeviceSerialNumber


def test_dose_sr_is_reproducible(study):
    a, b = dose_report(study), dose_report(study)
    assert a.SOPInstanceUID == b.SOPInstanceUID and a.ContentSequence == b.ContentSequence


@pytest.mark.parametrize(("name", "title", "key"), [
    ("test-SR.dcm", "Diagnosis", "Some UID"),
    ("reportsi.dcm", "Document Title", "Section Heading"),
])
def test_pydicom_sr_files_nest_under_their_title(name, title, key):
    path = get_testdata_file(name, download=False)
    assert path is not None, f"pydicom test file {name} is not on disk"
    tags = Dixel.from_pydicom(pydicom.dcmread(path)).tags
    assert title in tags and key in tags[title] and key not in tags
    assert isinstance(tags[title]["ContentDateTime"], datetime)
    assert "ContentSequence" not in tags


def test_dose_sr_through_a_real_orthanc_keeps_the_shape(clean_orthancs, orthanc_local, study):
    """Orthanc's ``tags?simplify`` answer for the uploaded report simplifies to the same nested shape."""
    from diana_core import DixelView
    from diana_core.services import build_endpoint

    pacs = build_endpoint("Orthanc", {k: v for k, v in orthanc_local.service_desc().items() if k != "ctype"},
                          service_name="pacs")
    d = dose_report_dixel(study, acquisitions=2)
    pacs.put(d)
    got = pacs.get(d.oid(), level="instances", view=DixelView.TAGS)
    assert_original_dose_shape(got.tags, 2)
    assert got.tags[TITLE]["Device Observer UID"] == d.tags[TITLE]["Device Observer UID"]
