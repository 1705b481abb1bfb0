"""The dcmtk receiver's header reader (``rawkeys``): the same keys pydicom reads, or None (then pydicom reads)."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian

from diana_dimse.rawkeys import text_keys
from diana_dimse.testdata import ct_instance

KEYWORDS = ("SOPInstanceUID", "PatientID", "StudyInstanceUID", "SeriesInstanceUID")
CORPUS = Path(pydicom.data.__file__).parent / "test_files"  # installed with pydicom (never downloaded)
TAGS = {int(pydicom.datadict.tag_for_keyword(k)): k for k in KEYWORDS}


def pydicom_keys(data: bytes) -> dict[str, str]:
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return {k: str(ds.get(k)) for k in KEYWORDS if ds.get(k)}


def raw_keys(data: bytes, head: int = 16384) -> dict[str, str] | None:
    found = text_keys(data[:head], TAGS, whole=len(data) <= head)
    return None if found is None else {TAGS[t]: v for t, v in found.items() if v}


def encoded(ds: Dataset, syntax: str | None = None) -> bytes:
    if syntax is not None:
        ds.file_meta.TransferSyntaxUID = syntax
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True, implicit_vr=syntax == ImplicitVRLittleEndian)
    return out.getvalue()


def with_sequences(ds: Dataset) -> Dataset:
    """Sequences before the keys, of undefined length (nested, and an empty one) and a private block."""
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "CTCHEST", "99X", "CT chest"
    inner = Dataset()
    inner.ReferencedSOPClassUID, inner.ReferencedSOPInstanceUID = "1.2.3", "1.2.3.4"
    code.ReferencedSOPSequence = Sequence([inner])
    ds.ProcedureCodeSequence = Sequence([code, Dataset()])
    ds.ReferencedStudySequence = Sequence([])
    for element in (ds["ProcedureCodeSequence"], ds["ReferencedStudySequence"]):
        element.is_undefined_length = True
    for item in ds.ProcedureCodeSequence:
        item.is_undefined_length_sequence_item = True
    block = ds.private_block(0x0009, "DIANA TEST", create=True)
    block.add_new(0x10, "LO", "private text")
    return ds


@pytest.mark.parametrize("syntax", [None, ImplicitVRLittleEndian])
def test_a_realistic_ct_with_sequences_reads_as_pydicom_reads_it(syntax):
    data = encoded(with_sequences(ct_instance(7, 1, 3)), syntax)
    want = pydicom_keys(data)
    assert set(want) == set(KEYWORDS)
    assert raw_keys(data) == want


def test_every_file_of_pydicoms_corpus_reads_the_same_or_defers_to_pydicom():
    agree = deferred = 0
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file():
            continue
        data = Path(path).read_bytes()
        got = raw_keys(data)
        if got is None:
            deferred += 1
            continue
        assert got == pydicom_keys(data), path.name
        agree += 1
    assert agree >= 50 and deferred >= 10  # most read here; big endian, deflated, no preamble defer


@pytest.mark.parametrize("case", ["big endian", "deflated", "no preamble", "latin-1 patient id", "two values",
                                  "cut short", "keys beyond the bytes"])
def test_what_it_cannot_answer_for_sure_defers_to_pydicom(case):
    ds = ct_instance(7, 1, 3)
    if case == "big endian":
        data = (CORPUS / "MR_small_bigendian.dcm").read_bytes()
    elif case == "deflated":
        data = (CORPUS / "image_dfl.dcm").read_bytes()
    elif case == "no preamble":
        data = encoded(ds)[128:]
    elif case == "latin-1 patient id":
        ds.PatientID = "MÜLLER01"
        data = encoded(ds)
    elif case == "two values":
        ds.PatientID = "A\\B"
        data = encoded(ds)
    elif case == "cut short":
        full = encoded(ds)
        data = full[:full.index(b"\x20\x00\x0d\x00") + 10]  # inside the study UID's header
        assert raw_keys(data, head=len(data) + 1) is None
        return
    else:
        data = encoded(with_sequences(ds))
        assert raw_keys(data, head=600) is None  # the keys lie past the first 600 bytes, which are not the file
        return
    assert raw_keys(data) is None
