"""The raw-element fast path (issue #33) against pydicom's full read and write, the reference it is held to:
pydicom's whole on-disk test corpus, generated files with PHI in hard places (three character sets), realistic CT
(explicit and implicit VR), mock-site studies, for every profile. Element by element equal datasets and byte-equal
pixel data, or the same error; what the fast path does not handle is counted as fallback."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from diana_core.deid_profile import ALLOW_BURNED_IN
from diana_core.pseudonym import Pseudonymizer
from diana_dcmdir.rawpath import anonymize_bytes, pydicom_path

from .phi import hard_study
from .test_conformance import PROFILES, profile_of, pydicom_files


def same(a: Any, b: Any, where: str = "") -> None:
    """Element-by-element equality of two datasets (recursing into sequences)."""
    assert sorted(int(t) for t in a.keys()) == sorted(int(t) for t in b.keys()), where
    for elem in a:
        other = b[elem.tag]
        at = f"{where}{elem.tag}"
        assert elem.VR == other.VR, at
        if elem.VR == "SQ":
            assert len(elem.value) == len(other.value), at
            for i, (x, y) in enumerate(zip(elem.value, other.value)):
                same(x, y, f"{at}[{i}]")
        else:
            assert elem.value == other.value, at


def outcome(fn: Any, blob: bytes, profile: Any) -> tuple[str, Any, Pseudonymizer]:
    pz = Pseudonymizer(key="rawpath-key", profile=profile)
    try:
        out, _ = fn(blob, pz, "instance.dcm")
    except Exception as exc:  # noqa: BLE001 - the same error is the expected outcome for refused files
        return "error", f"{type(exc).__name__}: {exc}", pz
    return "ok", out, pz


def compare(blob: bytes, profile: Any, label: str) -> str:
    """'fast', 'fallback' or 'error' (the same on both paths); AssertionError on any difference."""
    kind_ref, ref, _ = outcome(pydicom_path, blob, profile)
    kind, out, pz = outcome(anonymize_bytes, blob, profile)
    assert kind == kind_ref, f"{label}: {kind_ref} {ref if kind_ref == 'error' else ''} vs {kind} " \
                             f"{out if kind == 'error' else ''}"
    if kind == "error":
        assert out == ref, label
        return "error"
    a, b = pydicom.dcmread(io.BytesIO(ref)), pydicom.dcmread(io.BytesIO(out))
    same(a.file_meta, b.file_meta, f"{label} meta ")
    same(a, b, f"{label} ")
    if "PixelData" in a:
        assert a["PixelData"].value == b["PixelData"].value, label
    return "fast" if pz.report.paths.get("fast") else "fallback"


def realistic_ct(implicit: bool = False) -> bytes:
    """CT_small's full GE header with a 512x512 frame (~0.5 MB), explicit or implicit VR little endian."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.Rows = ds.Columns = 512
    ds.PixelData = np.arange(512 * 512, dtype=np.uint16).tobytes()
    if implicit:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize("name", PROFILES, ids=lambda p: p or "default")
def test_generated_and_realistic_files_take_the_fast_path_with_identical_output(tmp_path: Path, name: str) -> None:
    profile = profile_of(name, tmp_path)
    blobs = {"ct-explicit": realistic_ct(), "ct-implicit": realistic_ct(implicit=True)}
    for charset in ("latin", "utf8", "japanese"):
        for i, blob in enumerate(hard_study(2, charset)["files"]):
            blobs[f"hard-{charset}-{i}"] = blob
    paths = {label: compare(blob, profile, label) for label, blob in blobs.items()}
    assert paths["ct-explicit"] == paths["ct-implicit"] == paths["hard-latin-0"] == "fast", paths


def test_mock_site_studies() -> None:
    from datetime import datetime

    from diana_mock import MockStudy, reset_mock_seed

    reset_mock_seed()
    studies = [MockStudy(study_datetime=datetime(2024, 3, 5, 8), site_name="Mock Site", station_name="X-1",
                         modality=m, max_instances_per_series=2) for m in ("CT", "MR", "CR", "US")]
    blobs = [inst.gen_file() for study in studies for inst in study.instances()]
    assert len(blobs) >= 8
    paths = [compare(blob, None, f"mock-{i}") for i, blob in enumerate(blobs)]
    assert paths.count("fast") >= len(blobs) // 2, paths


@pytest.mark.parametrize("name", [None, "basic,retain-uids", "overrides.yml"], ids=lambda p: p or "default")
def test_pydicom_corpus(tmp_path: Path, name: str) -> None:
    profile = profile_of(name, tmp_path)
    allowing = attrs.evolve(profile, options=profile.options | {ALLOW_BURNED_IN})
    files = pydicom_files()
    assert len(files) > 50
    counts: dict[str, int] = {}
    for path in files:
        blob = Path(path).read_bytes()
        for prof in (profile, allowing):
            kind = compare(blob, prof, Path(path).name)
            counts[kind] = counts.get(kind, 0) + 1
    print(f"pydicom corpus, profile {name or 'default'}: {counts}")
    assert counts.get("fast", 0) >= 40, counts  # most of the corpus is little endian and delimited


def raw_against_dataset_path(blob: bytes, profile: Any, label: str) -> str:
    """'raw' when the raw-bytes engine took the file: then its bytes, counts and index values are the dataset path's;
    'declined' otherwise."""
    from diana_dcmdir import rawfile
    from diana_dcmdir.rawpath import dataset_path
    from diana_dcmdir.studies import INDEX_KEYS

    pz = Pseudonymizer(key="rawpath-key", profile=profile)
    try:
        out, view = rawfile.anonymize(blob, pz, "instance.dcm")
    except rawfile.Decline:
        return "declined"
    ref_pz = Pseudonymizer(key="rawpath-key", profile=profile)
    ref, ds = dataset_path(blob, ref_pz, "instance.dcm")
    assert ref_pz.report.paths == {"fast": 1}, label  # the dataset path took it too: same model
    assert out == ref, label
    assert pz.report.actions == ref_pz.report.actions, label
    for key in INDEX_KEYS:
        expected = ds.get(key)
        assert (view.get(key) is None) == (expected is None), f"{label} {key}"
        assert str(view.get(key) or "") == str(expected or ""), f"{label} {key}"
    return "raw"


def corpus_blobs() -> dict[str, bytes]:
    blobs = {Path(p).name: Path(p).read_bytes() for p in pydicom_files()}
    blobs["ct-explicit"], blobs["ct-implicit"] = realistic_ct(), realistic_ct(implicit=True)
    for charset in ("latin", "utf8", "japanese"):
        for i, blob in enumerate(hard_study(2, charset)["files"]):
            blobs[f"hard-{charset}-{i}"] = blob
    return blobs


@pytest.mark.parametrize("name", PROFILES, ids=lambda p: p or "default")
def test_raw_engine_writes_the_dataset_paths_bytes(tmp_path: Path, name: str) -> None:
    profile = profile_of(name, tmp_path)
    allowing = attrs.evolve(profile, options=profile.options | {ALLOW_BURNED_IN})
    counts: dict[str, int] = {}
    for label, blob in corpus_blobs().items():
        for prof in (profile, allowing):
            kind = raw_against_dataset_path(blob, prof, label)
            counts[kind] = counts.get(kind, 0) + 1
    print(f"raw engine, profile {name or 'default'}: {counts}")
    if name in (None, "basic", "basic,retain-uids"):
        assert counts.get("raw", 0) >= 40, counts
    else:  # safe private, cleaning and replacing are left to the dataset path
        assert "raw" not in counts or "retain-full-dates" in str(name), counts


def nested_file(implicit: bool = False, undefined: bool = True) -> bytes:
    """CT_small with sequences (of undefined length when ``undefined``) holding UIDs, dates, a person name, a
    patient id, a private block and a nested sequence; a top-level private block too."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    items = []
    for n in range(2):
        item = Dataset()
        item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.8.498.77.{n}"
        item.ReferencedFrameNumber = "1"
        item.InstanceCreationDate, item.InstanceCreationTime = "20240305", "081500"
        item.OperatorsName = "Nested^Operator"
        item.PatientID = ds.PatientID if n == 0 else "OTHER-ID"
        item.private_block(0x0011, "NESTED CREATOR", create=True).add_new(0x01, "LO", "private nested")
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "121311", "DCM", "Localizer"
        code.ContextUID = "1.2.826.0.1.3680043.8.498.99"
        item.PurposeOfReferenceCodeSequence = Sequence([code])
        if undefined:
            item.is_undefined_length_sequence_item = True
            code.is_undefined_length_sequence_item = True
            item["PurposeOfReferenceCodeSequence"].is_undefined_length = True
        items.append(item)
    ds.ReferencedImageSequence = Sequence(items)
    ds.SourceImageSequence = Sequence([Dataset()])  # an empty item
    if undefined:
        ds["ReferencedImageSequence"].is_undefined_length = True
    ds.private_block(0x0029, "TOP CREATOR", create=True).add_new(0x10, "LO", "private top")
    if implicit:
        ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize("name", PROFILES, ids=lambda p: p or "default")
def test_sequences_private_tags_and_implicit_vr_on_raw_bytes(tmp_path: Path, name: str) -> None:
    """Sequences (defined and undefined lengths, nested, empty items) are walked on the raw bytes: the same output
    as the dataset path byte for byte, and element for element as pydicom's; the profiles the raw engine leaves to
    the dataset path (safe private, cleaning, replacing) still give the same output."""
    profile = profile_of(name, tmp_path)
    blobs = {"undefined": nested_file(), "defined": nested_file(undefined=False),
             "implicit": nested_file(implicit=True, undefined=False)}
    modelled = "retain-safe-private" not in str(name) and name != "overrides.yml"
    for label, blob in blobs.items():
        assert raw_against_dataset_path(blob, profile, label) == ("raw" if modelled else "declined"), label
        assert compare(blob, profile, label) == "fast", label
    out, _ = anonymize_bytes(blobs["undefined"], Pseudonymizer(key="rawpath-key", profile=profile))
    ds = pydicom.dcmread(io.BytesIO(out))
    refs = ds.ReferencedImageSequence
    assert ds["ReferencedImageSequence"].is_undefined_length and refs[0].is_undefined_length_sequence_item
    assert refs[0].ReferencedSOPInstanceUID != "1.2.826.0.1.3680043.8.498.77.0" or "retain-uids" in str(name)
    assert "OperatorsName" not in refs[0] and all(not e.tag.is_private for item in refs for e in item)
    assert refs[0].PurposeOfReferenceCodeSequence[0].CodeValue == "121311"


def test_big_endian_deflated_and_encapsulated_pixel_data() -> None:
    """Big endian and deflated files go the pydicom way (counted as fallback); encapsulated (JPEG, RLE) pixel data
    is copied as bytes by the raw engine."""
    allowing = attrs.evolve(profile_of(None, Path(".")), options=frozenset({ALLOW_BURNED_IN}))
    expected = {"MR_small_bigendian.dcm": "fallback", "image_dfl.dcm": "fallback",
                "JPEG2000.dcm": "raw", "MR_small_RLE.dcm": "raw", "SC_rgb_jpeg_dcmtk.dcm": "raw"}
    for file, path in expected.items():
        blob = Path(get_testdata_file(file, download=False)).read_bytes()
        kind = compare(blob, allowing, file)
        if path == "raw":
            assert raw_against_dataset_path(blob, allowing, file) == "raw", file
        else:
            assert kind == "fallback", file


def test_anonymize_file_writes_what_anonymize_bytes_returns(tmp_path: Path) -> None:
    """``anonymize_file`` writes what ``anonymize_bytes`` returns: 0.5 MB CTs (one with an element after its pixel
    data), a big endian file (pydicom), a small file; its dataset answers what the callers read."""
    from diana_dcmdir import rawpath
    from diana_dcmdir.rawpath import anonymize_file

    ct = pydicom.dcmread(io.BytesIO(realistic_ct()))
    ct.DataSetTrailingPadding = b"\x00" * 4  # after the pixel data
    buf = io.BytesIO()
    ct.save_as(buf, enforce_file_format=True)
    blobs = {"ct": realistic_ct(), "trailing": buf.getvalue(),
             "bigendian": Path(get_testdata_file("MR_small_bigendian.dcm", download=False)).read_bytes(),
             "small": Path(get_testdata_file("CT_small.dcm", download=False)).read_bytes()}
    stages = []
    for label, blob in blobs.items():
        src, dst = tmp_path / f"{label}.dcm", tmp_path / f"{label}-out.dcm"
        src.write_bytes(blob)
        expected, ref = anonymize_bytes(blob, Pseudonymizer(key="rawpath-key"), src.name)
        before = dict(rawpath.STAGES)
        ds = anonymize_file(src, dst, Pseudonymizer(key="rawpath-key"))
        stages.append("+".join(k for k, v in rawpath.STAGES.items() if v != before.get(k, 0)))
        assert dst.read_bytes() == expected, label
        assert ds.get("SOPInstanceUID") == ref.get("SOPInstanceUID") and ds.get("PatientID") == ref.get("PatientID")
    assert stages == ["raw", "raw", "pydicom", "raw"], stages


def test_a_series_through_one_pseudonymizer_as_pydicom_would() -> None:
    """The caches kept across instances (a study's map, series UIDs, UID remaps, dates) give every instance of a job
    what pydicom's path gives it: two studies of two series each, interleaved, through one pseudonymizer per path."""
    blobs = []
    for study in range(2):
        for series in range(2):
            for index in range(2):
                ds = pydicom.dcmread(io.BytesIO(nested_file()))
                ds.StudyInstanceUID = f"1.2.826.0.1.3680043.8.498.5.{study}"
                ds.SeriesInstanceUID = f"1.2.826.0.1.3680043.8.498.5.{study}.{series}"
                ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{ds.SeriesInstanceUID}.{index}"
                ds.PatientID, ds.AccessionNumber = f"P{study}", f"A{study}"
                buf = io.BytesIO()
                ds.save_as(buf, enforce_file_format=True)
                blobs.append(buf.getvalue())
    fast, slow = Pseudonymizer(key="rawpath-key"), Pseudonymizer(key="rawpath-key")
    outs = [(anonymize_bytes(b, fast)[0], pydicom_path(b, slow)[0]) for b in blobs[::2] + blobs[1::2]]
    for i, (out, ref) in enumerate(outs):
        same(pydicom.dcmread(io.BytesIO(ref)), pydicom.dcmread(io.BytesIO(out)), f"{i} ")
    assert fast.report.paths == {"fast": 8} and fast.report.actions == slow.report.actions
    assert len({pydicom.dcmread(io.BytesIO(o)).SeriesInstanceUID for o, _ in outs}) == 4
