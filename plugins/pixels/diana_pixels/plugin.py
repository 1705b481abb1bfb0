"""Entry point of diana-dicom-pixels: registers the ``clean-pixels`` cleaner (imported lazily: OCR is heavy)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diana_core import hookimpl


def _cleaner() -> Any:
    from diana_pixels.cleaner import TesseractCleaner

    return TesseractCleaner()


@hookimpl
def diana_pixel_cleaners(register: Callable[[str, Callable[[], Any]], None]) -> None:
    """Registers "tesseract": known regions from deid's recipe plus OCR matched to the same instance's header."""
    register("tesseract", _cleaner)
