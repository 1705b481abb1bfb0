"""Benchmark: DcmDir header indexing and local pseudonymization against same-run baselines.

Creates N small but complete CT files (default 2,000: 20 studies x 100 instances, 16x16 pixels, sequences and a
private tag) in a temp dir, then times, on the same files in the same run:
  1. header indexing: ``DcmDir.index()`` (scandir walk + one-open header read + Dixel with simplified tags),
     ``DcmDir.index(keys=...)`` (only the identifiers a registry needs converted), and the bare reader ``diana_dcmdir.reading.read_header`` vs a bare ``pydicom.dcmread(stop_before_pixels=True)``
     loop over the known path list (files/s, ratio);
  2. anonymization end to end (``--anonymization`` runs only this): parse the file bytes, de-identify, serialize,
     Diana's engine (default profile) vs ``dicognito`` on the same realistic 512x512 CT files (``realistic.py``:
     full CT_small header) and on the toy files, rounds interleaved; min/median/max of the per-round time ratio.
Usage: python benchmarks/bench_dcmdir.py [N]

Last measured (anonymization, 60 realistic files x 5 rounds, 2 shared cores): Diana / dicognito min 1.77, median
3.81, max 6.49 (90 vs 25 files/s); toy files 0.36 / 1.05 / 1.12. Header rows: see benchmarks/README.md.
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings

import numpy as np
import pydicom
from dicognito.anonymizer import Anonymizer as Dicognito
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian
from realistic import ratio_line, realistic_ct

from diana_core import Dixel
from diana_core.pseudonym import Pseudonymizer
from diana_dcmdir import DcmDir
from diana_dcmdir.anonymize import anonymize_dataset
from diana_dcmdir.reading import dataset_bytes, read_bytes, read_header


def _uid() -> str:
    return f"2.25.{uuid.uuid4().int}"


def make_file(patient: int, study_uid: str, series_uid: str, number: int) -> bytes:
    meta = FileMetaDataset()
    sop = _uid()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = CTImageStorage, sop, study_uid, series_uid
    ds.FrameOfReferenceUID = study_uid + ".1"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = f"PATIENT^NUMBER{patient}", f"MRN{patient:06d}", "19600101"
    ds.PatientSex, ds.PatientAge, ds.AccessionNumber = "M", "064Y", f"ACC{patient:07d}"
    ds.StudyDate, ds.StudyTime, ds.SeriesDate, ds.SeriesTime = "20240301", "101500", "20240301", "101700"
    ds.ContentDate, ds.ContentTime, ds.AcquisitionDateTime = "20240301", "101710", "20240301101710.5"
    ds.InstitutionName, ds.ReferringPhysicianName, ds.OperatorsName = "EXAMPLE HOSPITAL", "DOC^REF", "TECH^OP"
    ds.Modality, ds.StudyDescription, ds.SeriesNumber, ds.InstanceNumber = "CT", "CT CHEST", 2, number
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = CTImageStorage, study_uid + ".2"
    ds.ReferencedImageSequence = Sequence([ref])
    ds.private_block(0x0009, "BENCH", create=True).add_new(0x01, "LO", "private value")
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelData = np.arange(256, dtype=np.uint16).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:9.0f}/s ({seconds:6.3f} s)"


def main(n: int = 2000, per_study: int = 100) -> None:
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src")
        blobs = []
        for i in range(n):
            if i % per_study == 0:
                study_uid, series_uid = _uid(), _uid()
            blobs.append(make_file(i // per_study, study_uid, series_uid, i % per_study + 1))
        folder = DcmDir(path=src, subpath_depth=1)
        paths = [folder.fullpath(folder.put(Dixel(file=b))) for b in blobs]
        print(f"{n} files, {sum(map(len, blobs)) / n / 1024:.1f} KiB each, in {len({os.path.dirname(p) for p in paths})} dirs")

        for p in paths:  # warm the page cache for everyone
            pydicom.dcmread(p, stop_before_pixels=True)

        def bare() -> float:
            t0 = time.perf_counter()
            for p in paths:
                pydicom.dcmread(p, stop_before_pixels=True)
            return time.perf_counter() - t0

        def reader() -> float:
            t0 = time.perf_counter()
            for p in paths:
                read_header(p)
            return time.perf_counter() - t0

        def index() -> float:
            t0 = time.perf_counter()
            count = sum(1 for _ in folder.index())
            assert count == n and folder.last_report.ok
            return time.perf_counter() - t0

        t_bare = min(bare() for _ in range(3))
        t_reader = min(reader() for _ in range(3))
        t_index = min(index() for _ in range(3))
        keys = ("AccessionNumber", "PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")

        def index_keys() -> float:
            t0 = time.perf_counter()
            assert sum(1 for _ in folder.index(keys=keys)) == n
            return time.perf_counter() - t0

        t_keys = min(index_keys() for _ in range(3))
        print("header indexing (best of 3)")
        print(f"  baseline pydicom.dcmread(stop_before_pixels) loop : {rate(n, t_bare)}")
        print(f"  diana_dcmdir.reading.read_header (validated)      : {rate(n, t_reader)}  ratio {t_bare / t_reader:.2f}")
        print(f"  DcmDir.index() (walk + read + Dixel/simplify)     : {rate(n, t_index)}  ratio {t_bare / t_index:.2f}")
        print(f"  DcmDir.index(keys=5 ids) (walk + read + 5 tags)   : {rate(n, t_keys)}  ratio {t_bare / t_keys:.2f}")





def _e2e_ours(blobs: list[bytes], pz: Pseudonymizer) -> float:
    """What DcmDir(anonymizing) does per file, minus the disk: parse, de-identify, serialize."""
    t0 = time.perf_counter()
    for blob in blobs:
        dataset_bytes(anonymize_dataset(read_bytes(blob), pz))
    return time.perf_counter() - t0


def _e2e_dicognito(blobs: list[bytes]) -> float:
    anonymizer = Dicognito(seed="bench")
    t0 = time.perf_counter()
    for blob in blobs:
        ds = pydicom.dcmread(io.BytesIO(blob))
        anonymizer.anonymize(ds)
        out = io.BytesIO()
        ds.save_as(out, enforce_file_format=True)
    return time.perf_counter() - t0


def anonymization(n: int = 60, rounds: int = 5) -> None:
    """End to end (read, de-identify, write) vs dicognito in the same run, rounds interleaved; ratio per round."""
    realistic = []
    for i in range(n):  # two patients, one study each, as a PACS series would arrive
        buf = io.BytesIO()
        realistic_ct(i, study=i * 2 // n, patient=i * 2 // n, run="anon").save_as(buf, enforce_file_format=True)
        realistic.append(buf.getvalue())
    toy = [make_file(i * 2 // n, f"2.25.{i * 2 // n + 1}", f"2.25.{i * 2 // n + 11}", i + 1) for i in range(n)]
    pz = Pseudonymizer(key="bench")  # the default profile: basic + modified dates + patient characteristics
    for label, blobs in (("realistic CT 512x512, full CT_small header", realistic), ("toy 16x16, 35 elements", toy)):
        _e2e_ours(blobs[:5], pz), _e2e_dicognito(blobs[:5])  # warm up both (imports, caches)
        ours, theirs, ratios = [], [], []
        for _ in range(rounds):
            t_theirs = _e2e_dicognito(blobs)
            t_ours = _e2e_ours(blobs, pz)
            ours.append(n / t_ours)
            theirs.append(n / t_theirs)
            ratios.append(t_theirs / t_ours)
        size = sum(map(len, blobs)) / len(blobs) / 1024
        print(f"anonymization end to end, {label} ({size:.0f} KiB), {n} files x {rounds} rounds")
        print(f"  dicognito: median {statistics.median(theirs):6.0f} files/s; Diana: median "
              f"{statistics.median(ours):6.0f} files/s")
        print("  " + ratio_line("Diana / dicognito (time ratio, > 1 = Diana faster)", ratios))


if __name__ == "__main__":
    if "--anonymization" not in sys.argv:
        main(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 2000)
    anonymization()
