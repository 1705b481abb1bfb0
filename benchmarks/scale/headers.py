"""Small generated DICOM instances for the scale runs: one template's bytes with its identifiers patched in place.

The template is a real, valid Part 10 file (pydicom writes it once): a CT header with the identifiers a registry and
an upload need and 2x2 pixels (~900 bytes). Each file is that template with fixed-width placeholders replaced by
same-length values, so writing a million costs a bytes.replace and a write each (no DICOM encoding per file).
Layout: ``base/dNNNN/iNNNNNNN.dcm``, ``per_dir`` files a folder, ``per_study`` instances a study (one accession each).
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

ROOT = "1.2.826.0.1.3680043.8.498.7"  # pydicom's UID root + a fixed branch for these runs
# placeholders: same widths as the values patched in (at most 10**8 instances)
PH = {"study": "9" * 9, "sop": "8" * 9, "acc": "7" * 9, "pat": "6" * 9}


def template() -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = f"{ROOT}.{PH['sop']}.3"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = f"{ROOT}.{PH['sop']}.3"
    ds.StudyInstanceUID = f"{ROOT}.{PH['study']}.1"
    ds.SeriesInstanceUID = f"{ROOT}.{PH['study']}.2"
    ds.AccessionNumber = f"A{PH['acc']}"
    ds.PatientID = f"P{PH['pat']}"
    ds.PatientName = "SCALE^TEST"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20200101"
    ds.StudyTime = "120000"
    ds.Modality = "CT"
    ds.StudyDescription = "SCALE RUN"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.Rows = ds.Columns = 2
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.arange(4, dtype=np.uint16).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def make_writer() -> Callable[[int, int], bytes]:
    """``instance(i, per_study)`` -> the bytes of the i-th instance (study i // per_study)."""
    raw = template()
    for ph in PH.values():
        assert raw.count(ph.encode()) >= 1, ph

    def instance(i: int, per_study: int) -> bytes:
        study = i // per_study
        out = raw.replace(PH["sop"].encode(), b"1%08d" % i)  # a UID component has no leading zero
        out = out.replace(PH["study"].encode(), b"1%08d" % study)
        out = out.replace(PH["acc"].encode(), b"%09d" % study)
        return out.replace(PH["pat"].encode(), b"%09d" % (study // 3))

    return instance


def accession(study: int) -> str:
    return f"A{study:09d}"


def write_tree(base: str, n: int, per_study: int = 10, per_dir: int = 1000, start: int = 0,
               report: Callable[[int, float], None] | None = None) -> int:
    """Write instances start..n-1 under base (existing files are rewritten); returns bytes per file."""
    instance = make_writer()
    t0 = time.perf_counter()
    size = 0
    for i in range(start, n):
        folder = os.path.join(base, f"d{i // per_dir:04d}")
        if i % per_dir == 0 or i == start:
            os.makedirs(folder, exist_ok=True)
        data = instance(i, per_study)
        size = len(data)
        with open(os.path.join(folder, f"i{i:07d}.dcm"), "wb") as fh:
            fh.write(data)
        if report is not None and (i + 1) % 100_000 == 0:
            report(i + 1, time.perf_counter() - t0)
    return size


if __name__ == "__main__":
    import sys

    target, count = sys.argv[1], int(sys.argv[2])
    print(write_tree(target, count, report=lambda k, s: print(f"{k} files in {s:.1f} s", flush=True)))
