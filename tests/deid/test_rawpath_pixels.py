"""clean-pixels with the raw-bytes engine: only the instances at risk of burned-in text are decoded (pydicom path,
cleaned by the pixels plugin); an ordinary CT of the same job is de-identified on its raw bytes, its pixel data
copied byte for byte, never decoded."""

from __future__ import annotations

import io

import pydicom

from diana_core.pseudonym import Pseudonymizer
from diana_dcmdir import rawpath
from diana_dcmdir.rawpath import anonymize_bytes
from diana_dcmdir.reading import dataset_bytes
from diana_pixels.testing import dataset, draw, us_background

from .test_rawpath import realistic_ct


def test_only_the_instance_at_risk_is_decoded_and_cleaned() -> None:
    image = us_background(rows=120, columns=200, seed=3)  # small: OCR time grows with the frame
    draw(image, [("DOE^JANE", "DejaVuSans.ttf", 16, (10, 8), 255)])
    us = dataset_bytes(dataset(image, "US", Manufacturer="Acme"))
    ct = realistic_ct()
    pz = Pseudonymizer(key="rawpath-key", profile="basic,clean-pixels")
    before = dict(rawpath.STAGES)
    ct_out, _ = anonymize_bytes(ct, pz, "ct.dcm")
    us_out, _ = anonymize_bytes(us, pz, "us.dcm")
    stages = {k: v - before.get(k, 0) for k, v in rawpath.STAGES.items() if v != before.get(k, 0)}
    assert stages == {"raw": 1, "pydicom": 1}, stages  # the CT never became a pydicom Dataset
    assert pz.report.paths == {"fast": 1, "fallback": 1}
    assert len(pz.report.cleaned) == 1 and not pz.report.quarantined  # the US, decoded and cleaned
    original = pydicom.dcmread(io.BytesIO(ct))["PixelData"].value
    assert pydicom.dcmread(io.BytesIO(ct_out))["PixelData"].value == original
    assert ct_out.endswith(original)  # copied as the file's last bytes
    cleaned = pydicom.dcmread(io.BytesIO(us_out))
    assert cleaned.BurnedInAnnotation == "NO" and "113101" in [c.CodeValue for c in
                                                              cleaned.DeidentificationMethodCodeSequence]
