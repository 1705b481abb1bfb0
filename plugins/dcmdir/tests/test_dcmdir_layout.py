"""Layout: width/depth subpaths, Orthanc storage dirs, lazy walks."""

from __future__ import annotations

import inspect
import os

import pytest

from diana_core.errors import ValidationError
from diana_dcmdir import DcmDir
from diana_dcmdir.layout import orthanc_subdirs, subpath, unstructured_subdirs, walk_files


def test_subpath_width_and_depth():
    assert subpath("abcdef.dcm", 2, 0) == "abcdef.dcm"
    assert subpath("abcdef.dcm", 2, 2) == os.path.join("ab", "cd", "abcdef.dcm")
    assert subpath("abcdef.dcm", 3, 1) == os.path.join("abc", "abcdef.dcm")
    with pytest.raises(ValidationError):
        subpath("ab", 2, 2)


def test_orthanc_subdirs_count_bounds_and_laziness():
    gen = orthanc_subdirs("/base")
    assert inspect.isgenerator(gen)
    dirs = list(gen)
    assert len(dirs) == 65536 == len(set(dirs))
    assert dirs[0] == os.path.join("/base", "00", "00") and dirs[-1] == os.path.join("/base", "ff", "ff")
    assert list(orthanc_subdirs("b", low=255, high=256)) == [os.path.join("b", "00", "ff"), os.path.join("b", "01", "00")]
    with pytest.raises(ValidationError):
        list(orthanc_subdirs("b", low=0, high=65536))


def test_unstructured_walk_and_orthanc_walk(tmp_path):
    for rel in ("a/b/c/x1", "a/x2", "00/0f/x3", "zz/x4", "a/.x5.part"):
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    subdirs = list(unstructured_subdirs(str(tmp_path)))
    assert str(tmp_path / "a" / "b" / "c") in subdirs and str(tmp_path) == subdirs[0]
    names = sorted(os.path.basename(p) for p in walk_files(str(tmp_path)))
    assert names == ["x1", "x2", "x3", "x4"]  # hidden in-progress files are not listed
    assert [os.path.basename(p) for p in walk_files(str(tmp_path), "ORTHANC")] == ["x3"]


def test_put_places_files_by_width_and_depth(tmp_path, study):
    from diana_core import Dixel

    d = DcmDir(path=str(tmp_path), subpath_width=2, subpath_depth=2)
    fn = d.put(Dixel(file=study["files"][0]))
    assert os.path.isfile(tmp_path / fn[0:2] / fn[2:4] / fn)
    assert d.exists(fn) and list(d.subdirs())[0] == str(tmp_path)
