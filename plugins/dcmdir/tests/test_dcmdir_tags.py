"""DcmDir's raw-element tag decoder (``tags.dataset_tags``) gives exactly the core's generic conversion, and the
Dixels DcmDir builds with it serialize, pickle and compare as before."""

from __future__ import annotations

import io
import json
import pickle
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pydicom.data
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from diana_core import Dixel
from diana_core.dixel import _dataset_dict
from diana_core.serialize import dixel_from_json, to_json
from diana_dcmdir import DcmDir, reading
from diana_dcmdir.tags import dataset_tags


def _both(data: bytes, header_only: bool = True) -> tuple[dict, dict]:
    """(generic conversion, raw decoder) of two fresh parses of the same bytes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some of pydicom's test files are odd on purpose
        generic = _dataset_dict(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=header_only, force=True))
        fast = dataset_tags(pydicom.dcmread(io.BytesIO(data), stop_before_pixels=header_only, force=True))
    return generic, fast


def _shipped_datasets() -> list[tuple[str, bytes]]:
    out = []
    for path in sorted((Path(pydicom.data.__file__).parent / "test_files").rglob("*")):  # on disk: no download
        if not path.is_file():
            continue
        data = Path(path).read_bytes()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pydicom.dcmread(io.BytesIO(data), force=True)
        except Exception:  # noqa: BLE001 - not every shipped file is DICOM (json, raw pixel data)
            continue
        out.append((path.name, data))
    return out


def test_every_shipped_file_decodes_as_the_generic_conversion():
    files = _shipped_datasets()
    assert len(files) > 60, "pydicom ships its test files (charsets, implicit/big endian, SR, RT, private SQ)"
    compared = 0
    for name, data in files:
        for header_only in (True, False):
            try:
                generic, _ = _both(data, header_only)
            except Exception:  # noqa: BLE001 - the generic conversion itself fails on a few broken files
                continue
            _, fast = _both(data, header_only)
            assert fast == generic, name
            assert list(fast) == list(generic), f"{name}: keys in tag order"
            compared += 1
    assert compared > 100


def _tricky() -> bytes:
    """Cases the decoder must hand to pydicom or get exactly right: UTF-8 text, person names with component
    groups, multi-valued and odd numbers, empty values, nested sequences, private and repeating-group elements."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = "2.25.1234"
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.ReferringPhysicianName = ["DOE^JOHN", "ROE^JANE"]
    ds.InstitutionName = "Hôpital Süd  "
    ds.StudyDescription = "a\\b"  # LO: split on the backslash
    ds.ImageComments = "keeps a\\backslash"  # LT: never split
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.add_new(0x00080060, "CS", " CT")  # Modality with a leading space: kept, as pydicom keeps it
    ds.PixelSpacing = ["0.5", "0.25"]
    ds.SliceThickness = "1.25 "
    ds.add_new(0x00200013, "IS", "12")  # InstanceNumber
    ds.add_new(0x00201041, "DS", "")  # SliceLocation, empty
    ds.add_new(0x00280106, "US", b"")  # SmallestImagePixelValue, empty
    ds.add_new(0x00181151, "IS", "7.0")  # XRayTubeCurrent as "7.0": pydicom's IS accepts it
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 4, 4, 16, 16, 15, 0
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.add_new(0x00280009, "AT", [0x00181063])  # FrameIncrementPointer
    ds.add_new(0x60003000, "OW", b"\x00\x01" * 8)  # OverlayData (repeating group): no keyword
    ds.add_new(0x00091001, "LO", "private")
    ds.ReferencedImageSequence = Sequence([Dataset(), Dataset()])
    ds.ReferencedImageSequence[0].ReferencedSOPInstanceUID = "2.25.1"
    ds.ReferencedImageSequence[1].ReferencedSOPInstanceUID = "2.25.2"
    ds.ReferencedImageSequence[1].PurposeOfReferenceCodeSequence = Sequence([Dataset()])
    ds.ReferencedImageSequence[1].PurposeOfReferenceCodeSequence[0].CodeMeaning = "Ünïcode"
    ds.OtherPatientIDsSequence = Sequence([])
    ds.RequestAttributesSequence = Sequence([Dataset()])  # an item with a character set of its own
    ds.RequestAttributesSequence[0].SpecificCharacterSet = "ISO_IR 100"
    ds.RequestAttributesSequence[0].RequestedProcedureDescription = "Tête"
    ds.PixelData = np.arange(16, dtype=np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_tricky_values_decode_as_the_generic_conversion(syntax):
    ds = pydicom.dcmread(io.BytesIO(_tricky()))
    ds.file_meta.TransferSyntaxUID = syntax
    buf = io.BytesIO()
    ds.save_as(buf, implicit_vr=syntax == ImplicitVRLittleEndian, little_endian=True)
    generic, fast = _both(buf.getvalue())
    assert fast == generic and list(fast) == list(generic)
    assert fast["PatientName"] == "Yamada^Tarou=山田^太郎=やまだ^たろう"
    assert fast["InstitutionName"] == "Hôpital Süd"
    assert fast["ImageComments"] == "keeps a\\backslash" and fast["StudyDescription"] == ["a", "b"]
    assert fast["PixelSpacing"] == [0.5, 0.25] and fast["InstanceNumber"] == 12 and fast["XRayTubeCurrent"] == 7
    assert fast["ReferencedImageSequence"][1]["PurposeOfReferenceCodeSequence"] == [{"CodeMeaning": "Ünïcode"}]
    assert fast["Modality"] == " CT" and fast["SliceLocation"] == "None"  # an empty DS: the generic "None"
    assert fast["RequestAttributesSequence"][0]["RequestedProcedureDescription"] == "Tête"
    assert "OverlayData" not in fast and "PixelData" not in fast and fast["OtherPatientIDsSequence"] == []


def _realistic_ct(folder: Path) -> Path:
    """CT_small's full header (258 elements, private groups, a sequence) on a 512x512 16-bit frame (~0.5 MB)."""
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.Rows = ds.Columns = 512
    ds.PixelData = np.zeros((512, 512), dtype=np.uint16).tobytes()
    path = folder / "ct.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def test_index_dixel_of_a_realistic_ct_equals_the_eager_conversion(tmp_path):
    path = _realistic_ct(tmp_path)
    assert path.stat().st_size > 500_000
    (dixel,) = DcmDir(path=str(tmp_path)).index()
    eager = Dixel.from_pydicom(pydicom.dcmread(path, stop_before_pixels=True), fn=str(path))
    assert len(dixel.tags) > 75  # the public elements; the private groups are left out
    assert dixel == eager and dixel.tags == eager.tags and dixel.meta == eager.meta and dixel.level == eager.level
    assert DcmDir(path=str(tmp_path)).get("ct.dcm") == eager
    back = dixel_from_json(to_json(dixel))  # the cattrs converter, datetimes revived
    assert back == dixel
    assert json.loads(json.dumps(dixel.tags, default=str))["SOPInstanceUID"] == eager.tags["SOPInstanceUID"]
    assert pickle.loads(pickle.dumps(dixel)) == dixel  # what Celery sends


def test_header_bigger_than_the_first_read_is_read_from_the_file(tmp_path, monkeypatch, make_dicom):
    path = _realistic_ct(tmp_path)
    whole = DcmDir(path=str(tmp_path)).get("ct.dcm")
    header = reading.read_header(str(path))
    assert header.filename == str(path) and header.buffer is None  # the first chunk is not kept in the dataset
    for size in (200, 1000, 3000, 5000):  # every cut: file meta, inside a value, inside the sequence, at pixels
        monkeypatch.setattr(reading, "HEAD_CHUNK", size)
        assert DcmDir(path=str(tmp_path)).get("ct.dcm") == whole, size
        cut = tmp_path / "cut.dcm"
        cut.write_bytes(make_dicom("2.25.1", "2.25.2", "2.25.3", rows=64)[:700])
        with pytest.raises(reading.InvalidDicom):
            reading.read_header(str(cut))
