"""Pixel data in and out: decode with pydicom's handlers to (frames, rows, columns, samples), write back uncompressed.

Compressed transfer syntaxes decode only when a handler is installed; otherwise a one-line ``ValidationError``
names the package to add, and the instance stays in quarantine.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from diana_core.errors import ValidationError

# transfer syntax UID -> the package whose pydicom handler decodes it
_HANDLERS = {
    "1.2.840.10008.1.2.4.50": "pylibjpeg pylibjpeg-libjpeg", "1.2.840.10008.1.2.4.51": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.57": "pylibjpeg pylibjpeg-libjpeg", "1.2.840.10008.1.2.4.70": "pylibjpeg pylibjpeg-libjpeg",
    "1.2.840.10008.1.2.4.80": "pyjpegls", "1.2.840.10008.1.2.4.81": "pyjpegls",
    "1.2.840.10008.1.2.4.90": "pylibjpeg pylibjpeg-openjpeg", "1.2.840.10008.1.2.4.91": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.201": "pylibjpeg pylibjpeg-openjpeg", "1.2.840.10008.1.2.4.202": "pylibjpeg pylibjpeg-openjpeg",
    "1.2.840.10008.1.2.4.203": "pylibjpeg pylibjpeg-openjpeg",
}


def transfer_syntax(ds: Any) -> str:
    meta = getattr(ds, "file_meta", None)
    return str(getattr(meta, "TransferSyntaxUID", "") or "1.2.840.10008.1.2.1")


def frames_of(ds: Any, name: str) -> np.ndarray:
    """The pixel data as a 4-D array (frames, rows, columns, samples); YBR decoded to RGB by pydicom."""
    try:
        arr = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - pydicom raises several kinds for a missing handler or bad data
        uid = transfer_syntax(ds)
        package = _HANDLERS.get(uid)
        if package:
            raise ValidationError(f"{name}: compressed pixel data ({uid}) cannot be decoded here: "
                                  f"pip install {package}") from None
        raise ValidationError(f"{name}: pixel data cannot be decoded ({type(exc).__name__})") from None
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if samples == 1:
        arr = arr.reshape(frames, arr.shape[-2], arr.shape[-1], 1)
    else:
        arr = arr.reshape(frames, arr.shape[-3], arr.shape[-2], samples)
    return np.array(arr, copy=True)


def photometric_after_decode(ds: Any) -> str:
    """What the decoded array holds: pydicom converts YBR_* to RGB when it decodes."""
    pi = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    return "RGB" if pi.startswith("YBR") else pi


def write_frames(ds: Any, arr: np.ndarray) -> None:
    """Put ``arr`` back as uncompressed pixel data (Explicit VR Little Endian), the SOP Instance UID kept."""
    photometric = photometric_after_decode(ds)
    bits = int(ds.get("BitsStored", 8) or 8)
    if arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.shape[0] == 1:
        arr = arr[0]
    if arr.dtype.itemsize * 8 < bits:
        bits = arr.dtype.itemsize * 8
    ds.set_pixel_data(arr, photometric, bits, generate_instance_uid=False)  # NumberOfFrames kept when > 1
