"""Build a complete pydicom Dataset for a MockInstance: modules per SOP class, file meta and pixel data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from diana_mock.pixels import CT_INTERCEPT, dose_screen, synth_pixels
from diana_mock.plans import SECONDARY_CAPTURE

if TYPE_CHECKING:
    from diana_mock.dixels import MockInstance

# tags of the mock tree that are not DICOM attributes to write as-is
_SKIP = {"StudyDateTime", "SeriesDateTime", "InstanceCreationDateTime"}
_FOV_MM = {"CT": 400.0, "MR": 240.0}


def _file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def _image_plane(ds: Dataset, modality: str, rows: int, index: int, frame_uid: str) -> None:
    spacing = _FOV_MM[modality] / rows
    thickness = 5.0 if modality == "CT" else 4.0
    z = -index * thickness
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.PixelSpacing = [round(spacing, 4), round(spacing, 4)]
    ds.SliceThickness = thickness
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.ImagePositionPatient = [-_FOV_MM[modality] / 2, -_FOV_MM[modality] / 2, z]
    ds.SliceLocation = z


def _modality_module(ds: Dataset, modality: str, kind: str, series_index: int) -> None:
    if kind == "report":
        ds.ConversionType = "WSD"
        ds.ImageType = ["DERIVED", "SECONDARY", "SCREEN SAVE"]
    elif modality == "CT":
        third = {"localizer": "LOCALIZER", "fluoro": "LOCALIZER", "reformat": "REFORMATTED"}.get(kind, "AXIAL")
        ds.ImageType = ["DERIVED", "SECONDARY", third] if kind == "reformat" else ["ORIGINAL", "PRIMARY", third]
        ds.RescaleIntercept = CT_INTERCEPT
        ds.RescaleSlope = 1
        ds.RescaleType = "HU"
        ds.KVP = 120
        ds.AcquisitionNumber = 1
        ds.WindowCenter, ds.WindowWidth = (40, 400) if kind != "localizer" else (0, 1500)
    elif modality == "MR":
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "DIFFUSION" if kind == "diffusion" else "ND"]
        ds.ScanningSequence = "EP" if kind == "diffusion" else "SE"
        ds.SequenceVariant = "NONE"
        ds.ScanOptions = ""
        ds.MRAcquisitionType = "2D"
        ds.RepetitionTime = [500.0, 4000.0, 9000.0][series_index % 3]
        ds.EchoTime = [15.0, 100.0, 120.0][series_index % 3]
        ds.EchoTrainLength = 1
        ds.MagneticFieldStrength = 1.5
        ds.ImagingFrequency = 63.87
        ds.AcquisitionNumber = 1
    elif modality == "CR":
        ds.ViewPosition = "LL" if kind == "lateral" else "PA"
        ds.PatientOrientation = ["A", "F"] if kind == "lateral" else ["L", "F"]
        ds.ImagerPixelSpacing = [5.0, 5.0]
        ds.KVP = 110 if kind == "lateral" else 120
        ds.WindowCenter, ds.WindowWidth = 2048, 4096
    elif modality == "US":
        ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL", ""]
        ds.PatientOrientation = ""


def _pixel_module(ds: Dataset, arr: Any) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = arr.shape
    bits = 8 if arr.dtype.itemsize == 1 else 16
    ds.BitsAllocated = bits
    ds.BitsStored = 8 if bits == 8 else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.PixelData = arr.tobytes()


def build_dataset(inst: MockInstance) -> Dataset:
    """The full dataset of one mock instance (deterministic: pixels keyed by its SOPInstanceUID)."""
    from diana_mock.dixels import UID_MINT, MockStudy

    tags = inst.all_tags()
    series = inst.parent
    study = series.parent if series is not None else None
    plan = getattr(series, "plan", None)
    kind = plan.kind if plan else "volume"
    sop_class = str(tags["SOPClassUID"])
    modality = str(tags.get("Modality") or "CT")
    study_modality = study.modality if isinstance(study, MockStudy) else modality
    rows = study.rows if isinstance(study, MockStudy) else 64
    cols = study.columns if isinstance(study, MockStudy) else 64
    n = max(int(getattr(series, "n_instances", 1) or 1), 1)
    index = int(tags.get("InstanceNumber") or 1) - 1
    ser_index = int(tags.get("SeriesNumber") or 1)

    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, str(tags["SOPInstanceUID"]))
    ds.SpecificCharacterSet = "ISO_IR 100"
    for key, value in tags.items():
        if key not in _SKIP and value is not None and not isinstance(value, (dict, list)):
            setattr(ds, key, value)
    ds.Manufacturer = "Diana Mock"
    ds.ManufacturerModelName = f"Mock {study_modality}"
    ds.PatientAge = _age(str(tags.get("PatientBirthDate", "")), str(tags.get("StudyDate", "")))
    if sop_class != SECONDARY_CAPTURE and modality in _FOV_MM:
        _image_plane(ds, modality, rows, index, UID_MINT.remap(f"{tags['StudyInstanceUID']}|frame"))
    _modality_module(ds, study_modality if kind == "report" else modality, kind, ser_index)
    position = 1.0 - index / max(n - 1, 1)
    key = str(tags["SOPInstanceUID"])
    if kind == "report":  # burned in, as on real dose screens: what clean-pixels must find
        name = str(tags.get("PatientName", "")).replace("^", " ")
        lines = [name, f"ID {tags.get('PatientID', '')}", _screen_date(str(tags.get("StudyDate", ""))),
                 "CTDIvol 12.4 mGy"]
        _pixel_module(ds, dose_screen(key, lines))
    else:
        _pixel_module(ds, synth_pixels(modality, kind, rows, cols, key, position, ser_index))
    return ds


def _screen_date(da: str) -> str:
    """A DICOM date as a screen prints it (MM/DD/YYYY)."""
    return f"{da[4:6]}/{da[6:8]}/{da[:4]}" if len(da) == 8 else da


def _age(birth: str, study: str) -> str:
    if len(birth) < 8 or len(study) < 8:
        return ""
    years = int(study[:4]) - int(birth[:4]) - (study[4:8] < birth[4:8])
    return f"{max(years, 0):03d}Y"
