"""Synthetic CT studies for tests and benchmarks: valid DICOM with a full CT header and real 16-bit pixels
(512x512 = 0.5 MB per instance by default in benchmarks), deterministic UIDs, written with pydicom (no numpy)."""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import Any

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def _uid(*parts: Any) -> str:
    digest = hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()
    return "2.25." + str(int(digest[:30], 16))


def _pixels(size: int, index: int) -> bytes:
    # a smooth ramp plus a per-slice offset: compressible like real CT, different in every slice
    row = struct.pack(f"<{size}H", *(((x * 7 + index * 13) % 3000) + 24 for x in range(size)))
    return b"".join(row[(y % 16) * 2:] + row[:(y % 16) * 2] for y in range(size))


def ct_instance(study: int, series: int, index: int, size: int = 64, run: str = "diana-dimse") -> Any:
    """One CT instance (pydicom FileDataset) of study ``study`` (accession ``ACC{study:08d}``)."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import UID, ExplicitVRLittleEndian

    sop = UID(_uid(run, study, series, index))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE)
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, sop
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = "20240315"
    ds.StudyTime, ds.SeriesTime, ds.AcquisitionTime, ds.ContentTime = "101500", "101700", "101720", "101721"
    ds.AccessionNumber = f"ACC{study:08d}"
    ds.Modality, ds.Manufacturer, ds.InstitutionName = "CT", "Diana Synthetic", "Test Hospital"
    ds.ReferringPhysicianName, ds.StationName = "REFERRING^DOC", "CTSCAN01"
    ds.StudyDescription, ds.SeriesDescription = "CT CHEST W CONTRAST", f"AXIAL {series + 1}"
    ds.ManufacturerModelName = "Synthetic 64"
    ds.PatientName, ds.PatientID = f"TEST^PATIENT{study:03d}", f"PT{study:06d}"
    ds.PatientBirthDate, ds.PatientSex, ds.PatientAge = "19600101", "O", "064Y"
    ds.BodyPartExamined, ds.ScanOptions, ds.SliceThickness, ds.KVP = "CHEST", "HELICAL MODE", "1.25", "120"
    ds.DataCollectionDiameter, ds.SoftwareVersions = "500", "1.0"
    ds.ReconstructionDiameter, ds.DistanceSourceToDetector, ds.DistanceSourceToPatient = "360", "946", "541"
    ds.GantryDetectorTilt, ds.TableHeight, ds.RotationDirection = "0", "160", "CW"
    ds.ExposureTime, ds.XRayTubeCurrent, ds.Exposure = "500", "300", "150"
    ds.FilterType, ds.GeneratorPower, ds.FocalSpots, ds.ConvolutionKernel = "BODY", "36000", "1.2", "STANDARD"
    ds.PatientPosition = "FFS"
    ds.StudyInstanceUID = _uid(run, study)
    ds.SeriesInstanceUID = _uid(run, study, series, "series")
    ds.StudyID, ds.SeriesNumber, ds.AcquisitionNumber, ds.InstanceNumber = str(study), series + 1, 1, index + 1
    ds.ImagePositionPatient = [-180.0, -180.0, -1.25 * index]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.FrameOfReferenceUID = _uid(run, study, "frame")
    ds.PositionReferenceIndicator, ds.SliceLocation = "SN", -1.25 * index
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.PixelSpacing = [0.703125, 0.703125]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth, ds.RescaleIntercept, ds.RescaleSlope = "40", "400", "-1024", "1"
    ds.RescaleType = "HU"
    ds.PixelData = _pixels(size, index)
    return ds


def write_ct_study(folder: str | os.PathLike[str], study: int, series: int = 2, per_series: int = 3, size: int = 64,
                   run: str = "diana-dimse") -> list[Path]:
    """Write one study's instances as ``folder/s{series}_{index}.dcm``; returns the paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for s in range(series):
        for i in range(per_series):
            path = out / f"s{s}_{i:04d}.dcm"
            ct_instance(study, s, i, size=size, run=run).save_as(path, enforce_file_format=True)
            paths.append(path)
    return paths


def ct_dixels(size: int = 64, run: str | None = None) -> list[Any]:
    """Three instances of one study (two in series 0, one in series 1) as Dixels carrying their file bytes: what the
    conformance kit's ``items`` fixture hands a DIMSE endpoint."""
    import io
    import uuid

    from diana_core import Dixel

    run, out = run or uuid.uuid4().hex, []
    for series, index in ((0, 0), (0, 1), (1, 0)):
        ds = ct_instance(0, series, index, size=size, run=run)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        out.append(Dixel.from_pydicom(ds, file=buf.getvalue()))
    return out
