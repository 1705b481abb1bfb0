"""Contact sheet: one thumbnail per series of a DICOM folder, tiled into a PNG a person can look at."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

THUMB = 128


def _dicom_files(folder: Path) -> Iterator[Path]:
    for root, _dirs, files in os.walk(folder):
        for name in sorted(files):
            if name.lower().endswith(".dcm"):
                yield Path(root) / name


def _to_8bit(arr: Any, ds: Any) -> Any:
    import numpy as np

    data = arr.astype("float32")
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        data = data.max() - data
    if getattr(ds, "Modality", "") == "CT" and "RescaleSlope" in ds:
        hu = data * float(ds.RescaleSlope) + float(getattr(ds, "RescaleIntercept", 0))
        return (np.clip((hu + 160) / 400, 0, 1) * 255).astype("uint8")  # soft-tissue window, W 400 / L 40
    low, high = np.percentile(data, (1, 99))
    if high <= low:
        high = low + 1
    return (np.clip((data - low) / (high - low), 0, 1) * 255).astype("uint8")


def series_thumbnails(folder: str | os.PathLike[str]) -> list[tuple[str, Any]]:
    """(label, 8-bit image) for the middle instance of each series, ordered by study then series number."""
    import pydicom

    series: dict[str, list[tuple[int, Path, Any]]] = {}
    for path in _dicom_files(Path(folder)):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        series.setdefault(str(ds.SeriesInstanceUID), []).append((int(ds.get("InstanceNumber") or 0), path, ds))
    out = []
    studies: dict[str, int] = {}
    for members in sorted(series.values(), key=lambda m: (str(m[0][2].get("StudyInstanceUID")),
                                                          int(m[0][2].get("SeriesNumber") or 0))):
        study_no = studies.setdefault(str(members[0][2].get("StudyInstanceUID")), len(studies) + 1)
        members.sort(key=lambda m: m[0])
        _, path, head = members[len(members) // 2]
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
        if arr.ndim == 3 and arr.shape[-1] != 3:
            arr = arr[arr.shape[0] // 2]
        label = f"study {study_no} #{head.get('SeriesNumber', '')} {head.get('Modality', '')} " \
                f"{str(head.get('SeriesDescription', ''))[:10]}"
        out.append((label, _to_8bit(arr, ds)))
    return out


def write_contact_sheet(folder: str | os.PathLike[str], png: str | os.PathLike[str], columns: int = 6) -> int:
    """Write the contact sheet of ``folder`` to ``png``; returns the number of series shown."""
    from PIL import Image, ImageDraw

    thumbs = series_thumbnails(folder)
    if not thumbs:
        return 0
    rows = (len(thumbs) + columns - 1) // columns
    sheet = Image.new("L", (columns * THUMB, rows * (THUMB + 14)), color=0)
    draw = ImageDraw.Draw(sheet)
    for n, (label, arr) in enumerate(thumbs):
        img = Image.fromarray(arr).convert("L").resize((THUMB, THUMB))
        x, y = (n % columns) * THUMB, (n // columns) * (THUMB + 14)
        sheet.paste(img, (x, y))
        draw.text((x + 2, y + THUMB + 1), label, fill=255)
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(png)
    return len(thumbs)
