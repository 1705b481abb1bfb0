"""The pixel-cleaning port: what the de-identification engine asks of a plugin for the ``clean-pixels`` option.

The engine (DcmDir plugin) finds a cleaner through the plugin manager (hook ``diana_pixel_cleaners``) and never
imports the plugin; ``diana-dicom-pixels`` provides one (Tesseract OCR + the ``deid`` package's known regions).
Without it, a profile asking for ``clean-pixels`` is refused with the install line.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from attrs import define, field

CLEAN_PIXELS = "clean-pixels"
PIXELS_INSTALL = "pip install 'diana-dicom[pixels]' (and the Debian packages tesseract-ocr tesseract-ocr-eng)"


@define(frozen=True)
class PixelBox:
    """One blanked rectangle: frame index (-1: every frame), x0, y0, x1, y1 (pixels, end exclusive), and why
    ("rule: <label>", "ocr: header value", "ocr: date pattern", ...; never the text itself: it is PHI)."""

    frame: int
    x0: int
    y0: int
    x1: int
    y1: int
    why: str

    def asdict(self) -> dict[str, Any]:
        return {"frame": self.frame, "box": [self.x0, self.y0, self.x1, self.y1], "why": self.why}


@define
class CleanedPixels:
    """What one cleaning pass did: boxes blanked, rule labels that matched, frames read by OCR."""

    boxes: list[PixelBox] = field(factory=list)
    rules: list[str] = field(factory=list)
    ocr_frames: int = 0

    def asdict(self) -> dict[str, Any]:
        return {"boxes": [b.asdict() for b in self.boxes], "rules": list(self.rules), "ocr_frames": self.ocr_frames}


@runtime_checkable
class PixelCleaner(Protocol):
    """Blanks burned-in identifiers in a pydicom dataset's pixel data, in place."""

    def clean(self, ds: Any, name: str = "<dataset>") -> CleanedPixels:
        """Clean ``ds`` (header still identified: its values say what to look for); re-encode it uncompressed when
        a box was blanked; set BurnedInAnnotation NO. ``ValidationError`` naming ``name`` (one line, no PHI) when
        the pixels cannot be decoded (naming the package to install): the instance then stays in quarantine."""
        ...
