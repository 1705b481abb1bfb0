"""Realistic benchmark data: 512x512 16-bit CT instances (~0.5 MB) with a full, real-world header.

The header is pydicom's own ``CT_small.dcm`` (a GE CT file: 258 elements, private groups, a nested
OtherPatientIDsSequence) with new deterministic UIDs and identifiers per instance; the pixel data is a 512x512 16-bit
frame. This is what a hospital CT series looks like on disk, unlike the few-element toys the first wave measured on.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from pathlib import Path
from typing import Any

ROOT = "1.2.826.0.1.3680043.8.498."
SIZE = 512


def _uid(*parts: Any) -> str:
    return ROOT + str(int(hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:30], 16))


@functools.lru_cache(maxsize=1)
def _template() -> bytes:
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("CT_small.dcm", download=False)).read_bytes()


@functools.lru_cache(maxsize=4)
def _pixels(seed: int) -> bytes:
    import numpy as np

    rng = np.random.default_rng(seed)
    return rng.integers(0, 4096, size=(SIZE, SIZE), dtype=np.uint16).tobytes()


def realistic_ct(index: int, study: int = 0, series: int = 0, patient: int = 0, run: str = "bench") -> Any:
    """One 512x512 CT instance (pydicom FileDataset) with the full CT_small header and fresh identifiers."""
    import pydicom

    ds = pydicom.dcmread(io.BytesIO(_template()))  # a fresh parse is 10x cheaper than a deepcopy
    sop = _uid(run, patient, study, series, index)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.StudyInstanceUID = _uid(run, patient, study)
    ds.SeriesInstanceUID = _uid(run, patient, study, series, "series")
    ds.FrameOfReferenceUID = _uid(run, patient, study, "for")
    ds.PatientID = f"BENCH{patient:05d}"
    ds.PatientName = f"BENCH^PATIENT{patient:05d}"
    ds.AccessionNumber = f"BA{patient:05d}{study:04d}"
    ds.SeriesNumber = series + 1
    ds.InstanceNumber = index + 1
    ds.Rows = ds.Columns = SIZE
    ds.PixelData = _pixels(index % 4)
    return ds


def write_realistic_cts(folder: str | os.PathLike[str], n: int, per_series: int = 100, per_study: int = 2,
                        run: str = "bench") -> list[Path]:
    """Write ``n`` realistic CT files (``per_series`` per series, ``per_study`` series per study) under folder."""
    out = []
    base = Path(folder)
    for i in range(n):
        series_no, index = divmod(i, per_series)
        study, series = divmod(series_no, per_study)
        path = base / f"{study:04d}" / f"{series:02d}" / f"IM{index:05d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        realistic_ct(index, study=study, series=series, patient=study, run=run).save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def ratio_line(label: str, ratios: list[float]) -> str:
    """``label: min a  median b  max c`` for ratios measured round by round."""
    import statistics

    return f"{label}: min {min(ratios):.2f}  median {statistics.median(ratios):.2f}  max {max(ratios):.2f}"
