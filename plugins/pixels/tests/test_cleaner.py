"""The Tesseract cleaner on images the tests render: identifiers drawn in several fonts, sizes, contrasts and
places, on ultrasound-like (8-bit, RGB or MONO, cine) and CT-like (12-bit) grounds. Every identifier's pixels must
be blanked and OCR of the output must not find it; other text and text-free images stay as they were."""

from __future__ import annotations

import numpy as np
import pytest

from diana_core.pixels import PixelCleaner
from diana_pixels.cleaner import TesseractCleaner
from diana_pixels.identifiers import norm
from diana_pixels.ocr import read_words, to_ocr_image
from diana_pixels.testing import ct_background, dataset, draw, us_background

SANS, MONO, SERIF, BOLD = "DejaVuSans.ttf", "DejaVuSansMono-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSans-Bold.ttf"
HEADER = {"PatientName": "KOWALSKI^MARTA", "PatientID": "MRN4471902", "AccessionNumber": "A20240311",
          "PatientBirthDate": "19580823", "StudyDate": "20240311", "InstitutionName": "Riverside General",
          "ReferringPhysicianName": "OKAFOR^BEN"}
# (text, font, size, (x, y), value as a fraction of white); identifiers of the header above and generic ones
US_IDS = [("KOWALSKI^MARTA", SANS, 15, (8, 6), 1.0), ("MRN4471902", MONO, 13, (8, 26), 0.8),
          ("11-Mar-2024", SERIF, 16, (520, 6), 0.7), ("Okafor", BOLD, 14, (495, 452), 0.55),
          ("08/23/1958", SANS, 12, (42, 456), 0.9)]
CT_IDS = [("Marta Kowalski", SERIF, 18, (300, 8), 1.0), ("A20240311", MONO, 12, (40, 490), 0.75),
          ("2024-03-11", SANS, 14, (8, 8), 0.6), ("Riverside General", BOLD, 13, (330, 488), 0.9),
          ("555-201-3344", SANS, 12, (36, 28), 1.0)]
# labels beside the identifiers (may be blanked with them) and a measurement (must stay)
US_LABELS = [("Dr", BOLD, 14, (470, 452), 0.55), ("DOB", SANS, 12, (8, 456), 0.9)]
CT_LABELS = [("Acc", MONO, 12, (8, 490), 0.75), ("Tel", SANS, 12, (8, 28), 1.0)]
KEPT = [("Depth 16 cm", SANS, 12, (540, 430), 0.9)]


def _render(kind: str, texts: list, rgb: bool = False, frames: int = 1, photometric: str | None = None) -> tuple:
    """The dataset and, per text, the mask of pixels its drawing changed (MONOCHROME1: stored inverted; YBR_FULL:
    the RGB image converted to YBR, as pydicom decodes it back)."""
    ground = us_background() if kind == "US" else ct_background()
    top = 255 if ground.dtype == np.uint8 else 4095
    masks = []
    image = ground.copy()
    for text, font, size, xy, level in texts:
        alone = ground.copy()
        draw(alone, [(text, font, size, xy, int(top * level))])
        masks.append(alone != ground)
        draw(image, [(text, font, size, xy, int(top * level))])
    pixels = np.stack([image] * frames) if frames > 1 else image
    if rgb:
        pixels = np.repeat(pixels[..., None], 3, axis=-1)
        pixels[..., 2] = np.minimum(pixels[..., 2], 230)  # a slightly tinted screen, still text-bright
    if photometric == "MONOCHROME1":
        pixels = (top - pixels).astype(pixels.dtype)
    if photometric == "YBR_FULL":
        from pydicom.pixels import convert_color_space

        pixels = convert_color_space(pixels, "RGB", "YBR_FULL")
    return dataset(pixels, kind, photometric or ("RGB" if rgb else "MONOCHROME2"), **HEADER), masks, image


def _frames(ds) -> np.ndarray:
    arr = ds.pixel_array
    return arr.reshape((int(ds.get("NumberOfFrames", 1) or 1),) + arr.shape[-2 - (ds.SamplesPerPixel > 1):])


def _ocr_text(frame: np.ndarray, photometric: str) -> str:
    frame = frame if frame.ndim == 3 else frame[..., None]
    return " ".join(norm(w["text"]) for w in read_words(to_ocr_image(frame, photometric), 1))


CASES = [("US", US_IDS, False, 1, None), ("US", US_IDS, True, 3, None), ("CT", CT_IDS, False, 1, None),
         ("CT", CT_IDS[:2], False, 1, "MONOCHROME1"), ("US", US_IDS[:2], True, 1, "YBR_FULL")]


@pytest.mark.parametrize(("kind", "texts", "rgb", "frames", "photometric"), CASES,
                         ids=["us-mono", "us-rgb-cine", "ct", "ct-monochrome1", "us-ybr"])
def test_every_identifier_drawn_is_blanked_and_other_text_kept(kind, texts, rgb, frames, photometric):
    labels = US_LABELS + KEPT if kind == "US" else CT_LABELS
    ds, masks, _ = _render(kind, texts + labels, rgb, frames, photometric)
    cleaner = TesseractCleaner()
    assert isinstance(cleaner, PixelCleaner)
    result = cleaner.clean(ds, "test")
    out = _frames(ds)
    assert out.shape[0] == frames and ds.BurnedInAnnotation == "NO"
    mono1 = photometric == "MONOCHROME1"
    assert ds.PhotometricInterpretation == (photometric if mono1 else ("RGB" if rgb else "MONOCHROME2"))
    for f in range(frames):
        grey = out[f] if out[f].ndim == 2 else out[f][..., 0]
        fill = grey.max() if mono1 else grey.min()  # blanked boxes are black as displayed
        for (text, *_), mask in zip(texts, masks):
            left = int(((grey != fill) & mask).sum())
            assert left == 0, f"frame {f}: {left} pixels of {text!r} remain"
        if kind == "US":  # the measurement label is not an identifier: its pixels are untouched
            assert (grey[masks[-1]] != fill).mean() > 0.9
    seen = _ocr_text(out[0], ds.PhotometricInterpretation)
    assert kind != "US" or "DEPTH" in seen  # OCR reads the output, and the label is still there
    for needle in ("KOWALSKI", "MARTA", "4471902", "20240311", "2024", "OKAFOR", "RIVERSIDE", "3344"):
        assert needle not in seen, needle
    assert {b.frame for b in result.boxes} == set(range(frames)) and result.ocr_frames == 1  # identical cine frames
    assert str(ds.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.1"


@pytest.mark.parametrize("kind", ["US", "CT"])
def test_text_free_images_are_unchanged(kind):
    ds, _, image = _render(kind, [])
    before = ds.PixelData
    result = TesseractCleaner().clean(ds, "test")
    assert ds.PixelData == before and result.boxes == [] and ds.BurnedInAnnotation == "NO"
