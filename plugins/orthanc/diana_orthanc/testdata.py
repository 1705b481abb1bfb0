"""Synthetic small CT instances for bulk tests and benchmarks (valid DICOM written with pydicom, 8x8 pixels)."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_ROOT = "2.25."


def _uid(*parts: Any) -> str:
    import hashlib

    digest = hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()
    return _ROOT + str(int(digest[:30], 16))


def ct_dataset(index: int, study: int = 0, series: int = 0, patient: int = 0, run: str = "diana-test",
               size: int = 8) -> Any:
    """One CT instance (pydicom FileDataset) with deterministic UIDs derived from (run, patient, study, series, index)."""
    import numpy as np
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian

    sop = UID(_uid(run, patient, study, series, index))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE)
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = sop
    ds.PatientID = f"TESTPT{patient:04d}"
    ds.PatientName = f"TEST^PATIENT{patient:04d}"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = _uid(run, patient, study)
    ds.SeriesInstanceUID = _uid(run, patient, study, series, "series")
    ds.AccessionNumber = f"ACC{patient:04d}{study:04d}"
    ds.StudyDate = "20200102"
    ds.StudyTime = "101500"
    ds.StudyID = str(study)
    ds.Modality = "CT"
    ds.SeriesNumber = series + 1
    ds.InstanceNumber = index + 1
    ds.StudyDescription = "Synthetic CT"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.ImagePositionPatient = [0, 0, float(index)]
    pixels = (np.arange(size * size, dtype=np.uint16).reshape(size, size) + index) % 4096
    ds.PixelData = pixels.tobytes()
    return ds


def ct_bytes(index: int, **kwargs: Any) -> bytes:
    """The bytes of one synthetic CT instance (see ``ct_dataset``)."""
    buf = io.BytesIO()
    ct_dataset(index, **kwargs).save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def iter_ct_bytes(n: int, per_series: int = 100, per_study: int = 2, run: str = "diana-test") -> Iterator[bytes]:
    """``n`` instances in series of ``per_series`` and studies of ``per_study`` series."""
    for i in range(n):
        series_no, index = divmod(i, per_series)
        study, series = divmod(series_no, per_study)
        yield ct_bytes(index, study=study, series=series, run=run)


def write_ct_instances(dirpath: str | os.PathLike[str], n: int, per_series: int = 100, per_study: int = 2,
                       run: str = "diana-test") -> list[Path]:
    """Write ``n`` synthetic CT instances to ``dirpath`` (``ct00000.dcm``...) and return their paths."""
    out = Path(dirpath)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(iter_ct_bytes(n, per_series, per_study, run)):
        path = out / f"ct{i:05d}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths


def small_ct(accession: str, number: int, *, patient_id: str | None = None, patient_name: str = "Test^Patient",
             study_uid: str | None = None, size: int = 4, **tags: Any) -> Any:
    """One small CT instance of the study ``accession`` (random SOP UID; study UID derived from the accession
    unless given; extra DICOM keywords as ``tags``)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = UID(CT_IMAGE_STORAGE), generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, meta.MediaStorageSOPInstanceUID
    ds.PatientID = patient_id if patient_id is not None else f"P-{accession}"
    ds.PatientName, ds.AccessionNumber = patient_name, accession
    ds.StudyInstanceUID = study_uid or f"1.2.826.0.1.3680043.8.498.{sum(map(ord, accession))}"
    ds.SeriesInstanceUID = ds.StudyInstanceUID + ".1"
    ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, number
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.PixelData = bytes(size * size * 2)
    for key, value in tags.items():
        setattr(ds, key, value)
    return ds


def write_small_ct(path: str | os.PathLike[str], accession: str, number: int, **kwargs: Any) -> Any:
    """Write ``small_ct(...)`` to ``path`` (folders created) and return the dataset."""
    ds = small_ct(accession, number, **kwargs)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return ds


def conformance_items(run: str | None = None) -> list[Any]:
    """Three instances of one study (two in one series, one in another) as Dixels with file bytes, fresh UIDs."""
    import uuid

    from diana_core.dixel import Dixel

    run = run or uuid.uuid4().hex
    out = []
    for series, index in ((0, 0), (0, 1), (1, 0)):
        ds = ct_dataset(index, series=series, run=run)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append(Dixel.from_pydicom(ds, file=buf.getvalue()))
    return out
