"""Test and benchmark images: ultrasound-like and CT-like frames with text drawn by Pillow at known places.

Fonts come from matplotlib's DejaVu set (installed with ``deid``), so images render the same on every machine.
``burned(...)`` returns a pydicom dataset whose header holds the identifiers drawn into its pixels and the boxes
where each was drawn, so a test can OCR the output and look at the pixels under each box.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

FONTS = ("DejaVuSans.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSans-Bold.ttf")
US_SOP = "1.2.840.10008.5.1.4.1.1.6.1"
US_MULTIFRAME_SOP = "1.2.840.10008.5.1.4.1.1.3.1"
CT_SOP = "1.2.840.10008.5.1.4.1.1.2"


def font(name: str, size: int) -> Any:
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name), size)


def us_background(rows: int = 480, columns: int = 640, seed: int = 1) -> np.ndarray:
    """A black frame with a speckled sector (the ultrasound fan), 8-bit."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    cx, top = columns / 2, rows * 0.12
    r = np.hypot(x - cx, y - top)
    angle = np.abs(np.arctan2(x - cx, y - top))
    fan = (r < rows * 0.8) & (r > rows * 0.05) & (angle < 0.7)
    img = np.zeros((rows, columns), np.float32)
    img[fan] = np.clip(rng.gamma(2.0, 30.0, int(fan.sum())), 0, 200)
    return img.astype(np.uint8)


def ct_background(rows: int = 512, columns: int = 512, seed: int = 1) -> np.ndarray:
    """An axial-CT-like slice as stored values (HU + 1024, 12 bits): air, a noisy body, a bright spine."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    y, x = y / rows * 2 - 1, x / columns * 2 - 1
    hu = np.full((rows, columns), -1000.0, np.float32)
    hu[(y / 0.6) ** 2 + (x / 0.85) ** 2 <= 1] = 40.0
    hu[((y - 0.35) / 0.1) ** 2 + (x / 0.08) ** 2 <= 1] = 700.0
    hu += rng.normal(0, 12, hu.shape)
    return np.clip(hu + 1024, 0, 4095).astype(np.uint16)


def draw(frame: np.ndarray, texts: list[tuple[str, str, int, tuple[int, int], int]]) -> list[tuple[int, ...]]:
    """Draw (text, font, size, (x, y), value) items into a 2-D frame in place; the drawn boxes (x0, y0, x1, y1)."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame if frame.dtype == np.uint8 else frame.astype(np.int32))  # "L" or "I"
    pen = ImageDraw.Draw(image)
    boxes = []
    for text, name, size, xy, value in texts:
        f = font(name, size)
        pen.text(xy, text, fill=value, font=f)
        boxes.append(tuple(int(v) for v in pen.textbbox(xy, text, font=f)))
    frame[...] = np.asarray(image).astype(frame.dtype)
    return boxes


def dataset(pixels: np.ndarray, kind: str = "US", photometric: str = "MONOCHROME2", **header: Any) -> Any:
    """A complete instance (Explicit VR LE) holding ``pixels`` ((frames,) rows, columns (, 3)) and ``header``."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    multi = pixels.ndim == (4 if photometric == "RGB" else 3)
    sop = CT_SOP if kind == "CT" else (US_MULTIFRAME_SOP if multi else US_SOP)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = sop  # type: ignore[assignment]
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = kind
    ds.PatientName, ds.PatientID, ds.AccessionNumber = "DOE^JANE", "PID0001", "ACC0001"
    ds.StudyDate, ds.PatientBirthDate = "20240304", "19610715"
    for key, value in header.items():
        setattr(ds, key, value)
    ds.set_pixel_data(pixels, photometric, 12 if pixels.dtype == np.uint16 else 8, generate_instance_uid=False)
    if kind == "CT":
        ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
        ds.ImageType = ["DERIVED", "SECONDARY", "SCREEN SAVE"]  # a screen: at risk, as the engine sees it
    return ds
