"""File handlers: PNG via ImageFileHandler (squash_to_8bit, max_size), text, DICOM datasets."""

from __future__ import annotations

import numpy as np
from PIL import Image

from diana_core import DixelView
from diana_dcmdir import DcmDir, DcmFileHandler, ImageFileHandler, TextFileHandler


def test_squash_to_8bit_uses_full_range_or_window():
    arr = np.array([[-1000.0, 0.0], [500.0, 3000.0]])
    out = ImageFileHandler.squash_to_8bit(arr)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    windowed = ImageFileHandler.squash_to_8bit(arr, window=(40, 400))  # soft-tissue window
    assert windowed.tolist() == [[0, 102], [255, 255]]  # (0 + 160) * 255 / 400
    assert ImageFileHandler.squash_to_8bit(np.full((2, 2), 7.0)).tolist() == [[0, 0], [0, 0]]


def test_png_from_dicom_pixels(tmp_path, make_dicom):
    d = DcmDir(path=str(tmp_path / "dcm"))
    fn = d.put(__import__("diana_core").Dixel(file=make_dicom("2.25.1", "2.25.2", "2.25.3", rows=64)))
    pixels = d.get(fn, view=DixelView.PIXELS).pixels
    images = ImageFileHandler(path=str(tmp_path / "png"), subpath_depth=1)
    path = images.put("ab-0001-0001.png", pixels, max_size=32)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "L" and im.size == (32, 32)
    back = images.get("ab-0001-0001.png")
    assert back.dtype == np.uint8 and back.shape == (32, 32) and back.max() > 200 and back.min() < 40  # full range used
    assert path.startswith(str(tmp_path / "png" / "ab"))


def test_text_and_dicom_handlers(tmp_path, make_dicom):
    text = TextFileHandler(path=str(tmp_path))
    text.put("report.txt", "Impression: normal.\n")
    assert text.get("report.txt") == "Impression: normal.\n"
    handler = DcmFileHandler(path=str(tmp_path), subpath_depth=1)
    data = make_dicom("2.25.1", "2.25.2", "2.25.3")
    handler.put("xy1.dcm", data)
    header = handler.get("xy1.dcm")
    assert header.SOPInstanceUID == "2.25.3" and "PixelData" not in header
    full = handler.get("xy1.dcm", get_pixels=True)
    assert full.pixel_array.shape == (8, 8)
    handler.put("xy2.dcm", full)  # a Dataset is written as a file too
    assert handler.get("xy2.dcm").SOPInstanceUID == "2.25.3"
    assert DcmFileHandler.is_dicom(handler.fullpath("xy2.dcm")) and not DcmFileHandler.is_dicom(tmp_path / "report.txt")
