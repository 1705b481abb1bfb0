"""Reading: header-only reads, preamble-less files, bad files named in InvalidDicom, rescaled pixels."""

from __future__ import annotations

import builtins

import numpy as np
import pytest

from diana_core import DixelView
from diana_core.errors import InvalidDicom
from diana_dcmdir import DcmDir, DcmFileHandler, reading


def test_header_only_read_stops_before_pixel_data_with_one_open(tmp_path, make_dicom, monkeypatch):
    path = tmp_path / "big.dcm"
    path.write_bytes(make_dicom("2.25.1", "2.25.2", "2.25.3", rows=256))
    opened = []
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda f, *a, **k: opened.append(str(f)) or real_open(f, *a, **k))
    ds = reading.read_header(str(path))
    monkeypatch.undo()
    assert opened == [str(path)]
    assert "PixelData" not in ds and ds.Rows == 256
    dixel = DcmDir(path=str(tmp_path)).get("big.dcm")
    assert dixel.pixels is None and dixel.file is None and dixel.tags["SOPInstanceUID"] == "2.25.3"


def test_file_without_preamble_is_accepted(tmp_path, shipped):
    ct = shipped("CT_small.dcm")
    assert ct, "pydicom ships CT_small.dcm on disk"
    data = open(ct[0], "rb").read()
    (tmp_path / "nopreamble.dcm").write_bytes(data[132:])  # no 128-byte preamble, no "DICM"
    ds = reading.read_header(str(tmp_path / "nopreamble.dcm"))
    assert ds.SOPInstanceUID == reading.read_header(ct[0]).SOPInstanceUID
    for path in shipped("ExplVR_LitEndNoMeta.dcm"):  # a bare dataset: no preamble and no file meta at all
        assert reading.read_header(path).SOPInstanceUID


def test_non_dicom_and_truncated_files_raise_invalid_dicom_naming_the_file(tmp_path, make_dicom, shipped):
    (tmp_path / "notes.txt").write_text("hello, this is not DICOM at all " * 20)
    full = make_dicom("2.25.1", "2.25.2", "2.25.3", rows=64)
    (tmp_path / "cut_in_pixels.dcm").write_bytes(full[: len(full) - 100])
    (tmp_path / "cut_in_header.dcm").write_bytes(full[:700])
    (tmp_path / "empty.dcm").write_bytes(b"")
    bad = [str(tmp_path / n) for n in ("notes.txt", "cut_in_pixels.dcm", "cut_in_header.dcm", "empty.dcm")]
    bad += shipped("MR_truncated.dcm", "rtplan_truncated.dcm")
    for path in bad:
        with pytest.raises(InvalidDicom) as info:
            reading.read_header(path)
        assert path.rsplit("/", 1)[-1] in str(info.value)
    assert not DcmFileHandler.is_dicom(bad[0]) and DcmFileHandler.is_dicom(full)


def test_shipped_files_read_header_only(shipped):
    paths = shipped("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "rtstruct.dcm", "JPEG2000.dcm", "waveform_ecg.dcm")
    assert paths, "pydicom ships its test files"
    for path in paths:
        ds = reading.read_header(path)
        assert ds.SOPInstanceUID and "PixelData" not in ds


def test_pixels_view_applies_rescale_as_float(tmp_path, make_dicom):
    d = DcmDir(path=str(tmp_path))
    (tmp_path / "r.dcm").write_bytes(make_dicom("2.25.1", "2.25.2", "2.25.3", rows=4, slope=2.5, intercept=-100))
    dixel = d.get("r.dcm", view=DixelView.PIXELS | DixelView.TAGS)
    raw = (np.arange(16, dtype=np.uint16) * 10).reshape(4, 4)
    assert dixel.pixels.dtype == np.float64
    np.testing.assert_allclose(dixel.pixels, raw * 2.5 - 100)
    assert dixel.tags["RescaleSlope"] == 2.5 and dixel.file is None


def test_pixels_of_a_shipped_ct_are_hounsfield(shipped):
    for path in shipped("CT_small.dcm"):
        d = DcmDir(path=path.rsplit("/", 1)[0])
        dixel = d.get(path, view="pixels")
        ds = reading.read_file(path)[1]
        np.testing.assert_allclose(dixel.pixels, ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
        assert dixel.pixels.min() < 0  # HU of air, not raw stored values


def test_deflated_transfer_syntax_is_read_not_flagged_truncated():
    from pydicom.data import get_testdata_file

    from diana_dcmdir import reading

    path = get_testdata_file("image_dfl.dcm", download=False)
    assert path is not None, "pydicom ships image_dfl.dcm"
    ds = reading.read_header(path)
    assert ds.file_meta.TransferSyntaxUID == reading.DEFLATED and ds.SOPInstanceUID
