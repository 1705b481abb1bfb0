"""Pure-Python DICOM helpers: levels, Orthanc ids, UID mints and tag simplification (no pydicom here)."""

from diana_core.dicom.levels import DicomLevel
from diana_core.dicom.orthanc_ids import orthanc_id
from diana_core.dicom.simplify import dicom_simplify
from diana_core.dicom.uids import DicomUIDMint, KeyedUIDMint, hash_str, is_valid_uid

__all__ = ["DicomLevel", "DicomUIDMint", "KeyedUIDMint", "dicom_simplify", "hash_str", "is_valid_uid", "orthanc_id"]
