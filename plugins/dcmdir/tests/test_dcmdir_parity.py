"""The original DIANA's DcmDir test cases (ep_dcmdir_test): ``exists`` answers for names that cannot be in the
layout, and ``exists(query)`` asks ``find``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from diana_core import Dixel
from diana_core.errors import ValidationError
from diana_dcmdir import DcmDir


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    source = get_testdata_file("CT_small.dcm", download=False)
    assert source is not None
    shutil.copy(source, tmp_path / "IM2263")
    nested = tmp_path / "IM2" / "263"
    nested.mkdir(parents=True)
    shutil.copy(source, nested / "IM2263")
    return tmp_path


def test_exists_answers_false_for_short_names(folder: Path) -> None:
    flat = DcmDir(path=str(folder))
    assert flat.check() and flat.exists("IM2263") and not flat.exists("abcd")
    deep = DcmDir(path=str(folder), subpath_width=3, subpath_depth=2)
    assert deep.check() and deep.exists("IM2263")
    assert not deep.exists("abcd")  # too short for 2 x 3 characters: simply not there
    assert not deep.exists("abcdefgh")
    with pytest.raises(ValidationError):
        deep.exists(Dixel())  # a Dixel with no file name and no UIDs is the caller's mistake


def test_exists_with_a_query_mapping(folder: Path) -> None:
    ds = pydicom.dcmread(folder / "IM2263", stop_before_pixels=True)
    flat = DcmDir(path=str(folder))
    assert flat.exists({"SOPInstanceUID": ds.SOPInstanceUID})
    assert flat.exists({"PatientID": "*"})
    assert not flat.exists({"SOPInstanceUID": "1.2.3.404"})
    assert flat.exists({"StudyInstanceUID": ds.StudyInstanceUID}, level="studies")


def test_naming_original_keeps_the_items_file_name(tmp_path: Path) -> None:
    """``naming: original`` writes under the item's own file name (the original's DcmDir.put); default: oid."""
    from diana_core import DixelView, load_services

    source = DcmDir(path=str(tmp_path / "src"))
    (tmp_path / "src").mkdir()
    shutil.copy(get_testdata_file("CT_small.dcm", download=False), tmp_path / "src" / "IM2263")
    item = source.get("IM2263", view=DixelView.TAGS_FILE)
    keep = load_services({"d": {"ctype": "DcmDir", "path": str(tmp_path / "keep"), "naming": "original"}})["d"]
    assert keep.put(item) == "IM2263" and (tmp_path / "keep" / "IM2263").is_file()
    assert keep.exists("IM2263")
    default = DcmDir(path=str(tmp_path / "oid"))
    assert default.put(item) == item.oid() + ".dcm"
    with pytest.raises(ValidationError, match="naming"):
        DcmDir(path=str(tmp_path), naming="other")
    with pytest.raises(ValidationError, match="PHI"):
        DcmDir(path=str(tmp_path), naming="original", anonymizing=True)
