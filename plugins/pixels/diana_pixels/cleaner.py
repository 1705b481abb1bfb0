"""The ``clean-pixels`` cleaner: known regions, then OCR of every distinct frame; blanked boxes re-encoded.

Implements ``diana_core.pixels.PixelCleaner``. The header is still identified when ``clean`` runs (the engine calls
it before pseudonymizing): its values are what OCR text is matched against.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np

from diana_core.pixels import CleanedPixels, PixelBox
from diana_pixels.decode import frames_of, photometric_after_decode, write_frames
from diana_pixels.identifiers import HeaderIdentifiers
from diana_pixels.ocr import identifying_boxes, read_frame, to_ocr_image
from diana_pixels.regions import known_regions

logger = logging.getLogger(__name__)


class TesseractCleaner:
    """Blank known burned-in regions (deid rules) and OCR text that identifies the patient, in place."""

    def __init__(self, upscale_below: int = 256, passes: tuple[str, ...] = ("plain", "flat")) -> None:
        self.upscale_below = upscale_below  # smaller frames are read at 2x (slow: 4x the pixels)
        self.passes = passes  # OCR passes per distinct frame (see ocr.read_frame)

    def find(self, ds: Any, name: str = "<dataset>") -> tuple[np.ndarray, CleanedPixels]:
        """Decode and find what to blank (nothing changed yet): the (frames, rows, columns, samples) array and boxes."""
        arr = frames_of(ds, name)
        frames, rows, columns = arr.shape[:3]
        photometric = photometric_after_decode(ds)
        boxes, rules = known_regions(ds, rows, columns)
        result = CleanedPixels(boxes=boxes, rules=rules)
        ids = HeaderIdentifiers(ds)
        scale = 2 if min(rows, columns) < self.upscale_below else 1
        seen: dict[bytes, list[PixelBox]] = {}
        for f in range(frames):
            digest = hashlib.blake2b(arr[f].tobytes(), digest_size=16).digest()
            if digest not in seen:  # cine loops repeat frames; read each distinct frame once
                words = read_frame(to_ocr_image(arr[f], photometric), scale, self.passes)
                seen[digest] = identifying_boxes(words, ids, f, rows, columns)
                result.ocr_frames += 1
            result.boxes.extend(PixelBox(f, b.x0, b.y0, b.x1, b.y1, b.why) for b in seen[digest])
        return arr, result

    def clean(self, ds: Any, name: str = "<dataset>") -> CleanedPixels:
        """``PixelCleaner.clean``: blank what ``find`` found; re-encode only when a box was blanked."""
        arr, result = self.find(ds, name)
        if result.boxes:
            blank(arr, result.boxes, photometric_after_decode(ds))
            write_frames(ds, arr)
        ds.BurnedInAnnotation = "NO"
        logger.debug("%s: %d boxes blanked, %d frames read", name, len(result.boxes), result.ocr_frames)
        return result


def blank(arr: np.ndarray, boxes: list[PixelBox], photometric: str) -> None:
    """Fill each box with the frame's darkest value as displayed (MONOCHROME1: its highest)."""
    for f in range(arr.shape[0]):
        fill = arr[f].max() if photometric == "MONOCHROME1" else arr[f].min()
        for b in boxes:
            if b.frame in (-1, f):
                arr[f, b.y0:b.y1, b.x0:b.x1, :] = fill
