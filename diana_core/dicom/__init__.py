"""Pure-Python DICOM helpers: levels, Orthanc ids, UID mints and tag simplification (no pydicom here)."""

from diana_core.dicom.levels import DicomLevel
from diana_core.dicom.orthanc_ids import orthanc_id
from diana_core.dicom.simplify import dicom_simplify
from diana_core.dicom.strings import (
    date_str_to_dicom,
    dicom_date,
    dicom_datetime,
    dicom_name,
    dicom_time,
    parse_dicom_datetime,
)
from diana_core.dicom.uids import DicomUIDMint, KeyedUIDMint, hash_str, is_valid_uid

__all__ = ["DicomLevel", "DicomUIDMint", "KeyedUIDMint", "date_str_to_dicom", "dicom_date", "dicom_datetime",
           "dicom_name", "dicom_simplify", "dicom_time", "hash_str", "is_valid_uid", "orthanc_id",
           "parse_dicom_datetime"]
