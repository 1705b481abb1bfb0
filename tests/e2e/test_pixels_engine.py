"""clean-pixels through the one de-identification engine (a DcmDir with anonymizing): at-risk instances are
cleaned and pseudonymized (code 113101 recorded), or kept in the job's quarantine when they cannot be decoded;
without the pixels plugin the option is refused with the install line."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from diana_core.deid_profile import DeidReport
from diana_core.dixel import Dixel
from diana_core.errors import ConfigError
from diana_core.plugins import check_profile, load_plugins, reset_plugin_manager
from diana_core.pseudonym import Pseudonymizer
from diana_core.quarantine import QuarantineStore
from diana_core.services import build_endpoint
from diana_dcmdir.anonymize import Quarantined
from diana_dcmdir.reading import dataset_bytes
from diana_pixels.testing import dataset, draw, us_background

SANS = "DejaVuSans.ttf"


def _us(compress: str | None = None) -> tuple:
    ground = us_background(seed=7)
    image = ground.copy()
    draw(image, [("DOE^JANE", SANS, 16, (10, 8), 255), ("PID0001", SANS, 14, (10, 30), 230)])
    ds = dataset(image, "US", Manufacturer="Acme")
    if compress:
        ds.compress(compress)
    return ds, image != ground


def _put(tmp_path, ds, profile: str):
    pz = Pseudonymizer(unkeyed=True, profile=profile)
    store = QuarantineStore(tmp_path / "job" / "quarantine")
    pz.report = DeidReport(profile=profile, key_id=pz.key_id, store=store)
    folder = build_endpoint("DcmDir", {"path": str(tmp_path / "out"), "anonymizing": True}, "out")
    written = folder.put_pseudonymized(Dixel(file=dataset_bytes(ds), meta={"FileName": "x.dcm"}), pz)
    return pydicom.dcmread(folder.fullpath(written)), pz.report, store


def test_rle_ultrasound_is_decoded_cleaned_pseudonymized_and_written_uncompressed(tmp_path):
    ds, drawn = _us(compress="1.2.840.10008.1.2.5")  # RLE Lossless: pydicom decodes it itself
    out, report, store = _put(tmp_path, ds, "basic,clean-pixels")
    assert out.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1" and out.BurnedInAnnotation == "NO"
    assert out.PatientName != "DOE^JANE" and out.PatientIdentityRemoved == "YES"
    assert "113101" in [c.CodeValue for c in out.DeidentificationMethodCodeSequence]
    pixels = out.pixel_array
    assert (pixels[drawn] == pixels.min()).all()  # every pixel of both identifiers blanked
    assert len(report.cleaned) == 1 and report.cleaned[0]["boxes"] >= 2 and not report.quarantined
    [entry] = store.entries()  # kept for review: a preview of the cleaned frame and its boxes, no DICOM copy
    assert entry["state"] == "delivered" and len(entry["boxes"]) == report.cleaned[0]["boxes"]
    assert store.preview_path(entry["id"]).read_bytes()[:4] == b"\x89PNG" and not store.data_path(entry["id"]).exists()


def test_undecodable_pixels_stay_in_quarantine_naming_the_package(tmp_path):
    ds, _ = _us()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.90"  # JPEG 2000 with no decodable stream
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\x4f\xff\x51junk"])
    ds["PixelData"].VR = "OB"
    with pytest.raises(Quarantined, match="pylibjpeg-openjpeg") as err:
        _put(tmp_path, ds, "basic,clean-pixels")
    assert "diana quarantine list" in str(err.value) and "DOE" not in str(err.value)
    store = QuarantineStore(tmp_path / "job" / "quarantine")
    [entry] = store.entries()
    assert entry["state"] == "waiting" and "pylibjpeg-openjpeg" in entry["reason"]
    assert (store.path.stat().st_mode & 0o777) == 0o700 and (store.data_path(entry["id"]).stat().st_mode & 0o777) == 0o600
    kept = pydicom.dcmread(store.data_path(entry["id"]))
    assert kept.SOPInstanceUID == ds.SOPInstanceUID  # the original, as received


def test_without_clean_pixels_the_instance_is_kept_for_review_and_not_written(tmp_path):
    ds, _ = _us()
    with pytest.raises(Quarantined, match="US image without BurnedInAnnotation NO"):
        _put(tmp_path, ds, "basic")
    assert len(QuarantineStore(tmp_path / "job" / "quarantine").entries()) == 1
    assert not any(p.is_file() for p in (tmp_path / "out").rglob("*"))


def test_clean_pixels_is_refused_with_the_install_line_without_the_plugin(tmp_path, monkeypatch):
    monkeypatch.setenv("DIANA_PLUGINS", "dcmdir")
    reset_plugin_manager(load_plugins())
    try:
        with pytest.raises(ConfigError, match=r"diana-dicom\[pixels\]"):
            check_profile(Pseudonymizer(unkeyed=True, profile="basic,clean-pixels").profile)
        ds, _ = _us()
        with pytest.raises(ConfigError, match=r"diana-dicom\[pixels\]"):
            _put(tmp_path, ds, "basic,clean-pixels")
    finally:
        reset_plugin_manager(None)
    assert np.asarray(ds.pixel_array).size  # the original was left alone


def test_the_cleaner_loads_through_the_entry_point(monkeypatch):
    from diana_core.pixels import PixelCleaner

    monkeypatch.setenv("DIANA_PLUGINS", "pixels")
    plugins = load_plugins()
    assert plugins.infos["pixels"].pixel_cleaners == ["tesseract"] and plugins.infos["pixels"].error is None
    cleaner = plugins.pixel_cleaner()
    assert isinstance(cleaner, PixelCleaner) and plugins.pixel_cleaner() is cleaner  # built once
