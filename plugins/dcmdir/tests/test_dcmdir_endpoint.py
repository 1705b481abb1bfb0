"""DcmDir endpoint: round trips, views, file names, bulk reads with bad files, find, zips, service files."""

from __future__ import annotations

import inspect
import os
import zipfile

import pytest

from diana_core import Dixel, DixelView, load_services
from diana_core.errors import InvalidDicom, NotFound, ValidationError
from diana_dcmdir import DcmDir, ReadReport


def _fill(d: DcmDir, files: list[bytes]) -> list[str]:
    return [d.put(Dixel(file=data)) for data in files]


def test_put_get_round_trip_and_combined_views(tmp_path, study):
    d = DcmDir(path=str(tmp_path), subpath_depth=1)
    fns = _fill(d, study["files"])
    assert all(fn.endswith(".dcm") and "MRN" not in fn and "ACC" not in fn for fn in fns)
    got = d.get(fns[1], view=DixelView.TAGS | DixelView.FILE | DixelView.PIXELS)
    assert got.file == study["files"][1]
    assert got.tags["SOPInstanceUID"] == study["sops"][1] and got.pixels.shape == (8, 8)
    assert d.get(fns[1], view="file").file == study["files"][1]
    # a Dixel with tags finds its file by Orthanc id, whatever its FileName says
    probe = Dixel(tags=dict(got.tags), level=got.level, meta={"FileName": "/elsewhere/x.dcm"})
    assert d.get(probe).tags["InstanceNumber"] == 2 and d.exists(probe)


def test_exists_delete_update_and_missing(tmp_path, study):
    d = DcmDir(path=str(tmp_path))
    fn = _fill(d, study["files"][:1])[0]
    assert d.exists(fn)
    path = d.update(fn, {"StudyDescription": "UPDATED", "InstitutionName": None})
    tags = d.get(fn).tags
    assert path.endswith(fn) and tags["StudyDescription"] == "UPDATED" and "InstitutionName" not in tags
    assert d.delete(fn) is True and not d.exists(fn) and d.delete(fn) is False
    with pytest.raises(NotFound, match="DcmDir"):
        d.get(fn)
    with pytest.raises(ValidationError):
        d.put(Dixel(tags={"PatientID": "x"}))  # no file bytes
    with pytest.raises(InvalidDicom):
        d.put(Dixel(file=b"not dicom at all" * 10))


def test_check(tmp_path):
    assert DcmDir(path=str(tmp_path)).check() is True
    assert DcmDir(path=str(tmp_path / "missing")).check() is False


def test_bulk_read_reports_bad_files_quarantines_and_continues(tmp_path, study):
    src = tmp_path / "in"
    d = DcmDir(path=str(src), subpath_depth=1, quarantine=str(tmp_path / "quarantine"))
    _fill(d, study["files"])
    (src / "zz").mkdir()
    (src / "zz" / "readme.txt").write_text("not a DICOM file, just notes " * 10)
    (src / "zz" / "cut.dcm").write_bytes(study["files"][0][:600])
    gen = d.index()
    assert inspect.isgenerator(gen)
    dixels = list(gen)
    report = d.last_report
    assert len(dixels) == 3 and report.read == 3 and report.bad_count == 2
    assert sorted(os.path.basename(p) for p, _ in report.bad) == ["cut.dcm", "readme.txt"]
    assert all(p.startswith(str(tmp_path / "quarantine")) and os.path.isfile(p) for p, _ in report.bad)
    assert not (src / "zz" / "cut.dcm").exists()
    # an explicit report and a list of paths, no quarantine
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\x00" * 50)
    mine = ReadReport()
    assert len(list(d.read_headers([str(bad), dixels[0].fn], report=mine))) == 1
    assert mine.bad_count == 1 and bad.exists()


def test_find_is_lazy_and_filters(tmp_path, study):
    d = DcmDir(path=str(tmp_path))
    _fill(d, study["files"])
    found = d.find({"SeriesInstanceUID": study["series"][0]})
    assert inspect.isgenerator(found)
    assert sorted(x.tags["InstanceNumber"] for x in found) == [1, 2]
    assert len(list(d.find({"Modality": "C*"}))) == 3 and not list(d.find({"Modality": "MR"}))


def test_zip_round_trip(tmp_path, study):
    a = DcmDir(path=str(tmp_path / "a"))
    _fill(a, study["files"])
    archive = tmp_path / "study.zip"
    assert a.get_zip(study["study_uid"], str(archive)) == 3
    with zipfile.ZipFile(archive) as zf:
        assert len(zf.namelist()) == 3 and all(n.endswith(".dcm") for n in zf.namelist())
    b = DcmDir(path=str(tmp_path / "b"), subpath_depth=2)
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("DICOMDIR", b"\x00" * 200)
        zf.writestr("notes/readme.txt", "hello")
    result = b.put_zip(str(archive))
    assert (result.done, result.skipped, result.failed) == (3, 2, [])
    assert sorted(x.file for x in (b.get(fn, view="file") for fn in (os.path.basename(p) for p in b.files()))) \
        == sorted(study["files"])
    assert b.put_zip(archive.read_bytes()).done == 3  # bytes work too (same files: replaced, not duplicated)
    assert len(list(b.files())) == 3
    with pytest.raises(NotFound):
        a.get_zip("2.25.404", str(tmp_path / "none.zip"))


def test_service_file_builds_both_ctypes(tmp_path):
    services = load_services({
        "folder": {"ctype": "DcmDir", "path": str(tmp_path), "subpath_depth": 2, "anonymizing": True},
        "inbox": {"ctype": "ObservableDcmDir", "path": str(tmp_path / "in"), "polling_interval": 0.5},
    })
    assert isinstance(services["folder"], DcmDir) and services["folder"].subpath_depth == 2
    assert services["folder"].anonymizing is True and services["inbox"].polling_interval == 0.5
    assert DcmDir.fromdict(services["folder"].asdict()).path == str(tmp_path)


def test_index_with_selected_keys_converts_only_those(tmp_path, study):
    d = DcmDir(path=str(tmp_path))
    _fill(d, study["files"])
    dixels = list(d.index(keys=["AccessionNumber", "SOPInstanceUID", "ImageType", "InstanceNumber"]))
    assert sorted(x.tags["SOPInstanceUID"] for x in dixels) == sorted(study["sops"])
    assert all(set(x.tags) == {"AccessionNumber", "SOPInstanceUID", "InstanceNumber"} for x in dixels)
    assert dixels[0].fn.startswith(str(tmp_path)) and isinstance(dixels[0].tags["InstanceNumber"], int)
