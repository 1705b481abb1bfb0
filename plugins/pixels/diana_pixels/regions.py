"""Known burned-in regions: the ``deid`` package's filter recipe (RSNA CTP-derived, maintained upstream, pinned).

A recipe entry matches header fields (Manufacturer, ManufacturerModelName, Modality, ImageType, Rows...) and lists
rectangles where that device burns in text; every matching rectangle is blanked. Entries without rectangles only
flag an instance as risky (which the engine already decided), so they add nothing here.
"""

from __future__ import annotations

import functools
import logging
import warnings
from typing import Any

from diana_core.pixels import PixelBox

logger = logging.getLogger(__name__)


@functools.cache
def _recipe() -> Any:
    from deid.config import DeidRecipe

    return DeidRecipe("dicom")  # deid's default recipe: its %filter sections are the CTP burned-in rules


def _as_file_dataset(ds: Any) -> Any:
    from pydicom.dataset import FileDataset

    if isinstance(ds, FileDataset):
        return ds
    return FileDataset("", ds, file_meta=getattr(ds, "file_meta", None), preamble=b"\0" * 128)


def _detector() -> Any:
    """deid's detector, imported quietly: its package imports a pydicom module pydicom 3 warns about (and logs)."""
    pydicom_log = logging.getLogger("pydicom")
    level = pydicom_log.level
    pydicom_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from deid.dicom.pixels.detect import has_burned_pixels
    finally:
        pydicom_log.setLevel(level)
    return has_burned_pixels


def known_regions(ds: Any, rows: int, columns: int) -> tuple[list[PixelBox], list[str]]:
    """Rectangles (every frame) the rule set lists for this instance, clipped to the image, and the rule labels."""
    has_burned_pixels = _detector()

    result = has_burned_pixels(_as_file_dataset(ds), deid=_recipe())
    boxes: list[PixelBox] = []
    labels: list[str] = []
    for hit in result.get("results", []):
        coords = [c for c in hit.get("coordinates") or [] if str(c[0]) == "0"]  # 0 = clean, 1 = keep
        if not coords:
            continue
        label = str(hit.get("reason", "")).strip()[:60] or "rule"
        for _, spec in coords:
            for text in spec if isinstance(spec, list) else [spec]:
                if str(text).strip().lower() == "all":
                    boxes.append(PixelBox(-1, 0, 0, columns, rows, "rule: whole image"))
                    continue
                try:
                    x0, y0, x1, y1 = (int(v) for v in str(text).split(","))
                except ValueError:
                    logger.warning("deid rule with unreadable coordinates skipped")
                    continue
                x0, x1 = max(0, min(x0, columns)), max(0, min(x1, columns))
                y0, y1 = max(0, min(y0, rows)), max(0, min(y1, rows))
                if x1 > x0 and y1 > y0:
                    boxes.append(PixelBox(-1, x0, y0, x1, y1, "rule: known region"))
                    labels.append(label)
    return boxes, labels
