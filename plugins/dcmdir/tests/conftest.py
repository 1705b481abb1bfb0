"""Fixtures for diana-dcmdir: real DICOM files generated with pydicom, pydicom's own test files, polling helper."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian


def generate_uid() -> str:
    """A unique UID short enough to append a component to."""
    return f"2.25.{uuid.uuid4().int}"


PHI = {
    "PatientName": "TESTPATIENT^ALICE^Q",
    "PatientID": "MRN0012345",
    "PatientBirthDate": "19700215",
    "AccessionNumber": "ACC9988776",
    "InstitutionName": "SAINT EXAMPLE HOSPITAL",
    "ReferringPhysicianName": "REFERRER^ROBERT",
    "OperatorsName": "OPERATOR^OLIVIA",
    "OtherPatientIDs": "OTHERID777",
}


def make_instance(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    instance_number: int = 1,
    referenced_sop: str | None = None,
    rows: int = 8,
    slope: float = 1.0,
    intercept: float = -1024.0,
    phi: dict[str, str] | None = None,
) -> bytes:
    """A small but complete CT image file with PHI in top-level tags, sequences and private tags."""
    phi = dict(PHI, **(phi or {}))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.FrameOfReferenceUID = study_uid + ".9"
    for key, value in phi.items():
        setattr(ds, key, value)
    ds.PatientSex, ds.PatientAge, ds.PatientWeight = "F", "054Y", "61.5"
    ds.StudyDate, ds.StudyTime = "20240301", "235000"
    ds.SeriesDate, ds.SeriesTime = "20240301", "235500"
    ds.AcquisitionDateTime = "20240301235510.123456"
    ds.ContentDate, ds.ContentTime = "20240301", "235510"
    ds.Modality, ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "CT", "STUDY42", 3, instance_number
    ds.StudyDescription = "CT CHEST FOR " + phi["PatientName"]
    ref = Dataset()
    ref.ReferencedSOPClassUID = CTImageStorage
    ref.ReferencedSOPInstanceUID = referenced_sop or sop_uid
    ds.ReferencedImageSequence = Sequence([ref])
    req = Dataset()
    req.AccessionNumber = phi["AccessionNumber"]
    req.RequestedProcedureID = "RP" + phi["PatientID"]
    req.StudyInstanceUID = study_uid
    ds.RequestAttributesSequence = Sequence([req])
    src = Dataset()  # a sequence the profile keeps: its identifiers must still be replaced
    src.ReferencedSOPClassUID = CTImageStorage
    src.ReferencedSOPInstanceUID = study_uid + ".77"
    src.PatientID = phi["PatientID"]
    ds.SourceImageSequence = Sequence([src])
    block = ds.private_block(0x0009, "DIANA TEST", create=True)
    block.add_new(0x01, "LO", phi["PatientName"])
    ds.Rows = ds.Columns = rows
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = (np.arange(rows * rows, dtype=np.uint16) * 10).reshape(rows, rows).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.fixture
def study() -> dict[str, Any]:
    """Three instances of one study in two series; instance 2 references instance 1."""
    study_uid, s1, s2 = generate_uid(), generate_uid(), generate_uid()
    sops = [generate_uid() for _ in range(3)]
    files = [
        make_instance(study_uid, s1, sops[0], 1),
        make_instance(study_uid, s1, sops[1], 2, referenced_sop=sops[0]),
        make_instance(study_uid, s2, sops[2], 1),
    ]
    return {"study_uid": study_uid, "series": [s1, s2], "sops": sops, "files": files}


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


@pytest.fixture
def poll() -> Callable[..., Any]:
    return wait_for


def shipped_files(*names: str) -> list[str]:
    """Paths of DICOM test files that pydicom ships on disk (never downloads)."""
    from pydicom.data import get_testdata_file

    found = [get_testdata_file(n, download=False) for n in names]
    return [str(p) for p in found if p]


@pytest.fixture
def shipped() -> Callable[..., list[str]]:
    return shipped_files


@pytest.fixture
def make_dicom() -> Callable[..., bytes]:
    return make_instance
