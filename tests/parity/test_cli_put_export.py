"""``diana put --anonymize`` / ``upload --anonymize`` (the original's ``oput -a``), ``put --from`` copying whole
studies, and ``diana export-png`` (#15 items 5 and 9), on real folders and a real Orthanc."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file

from diana_core.cli import cli
from diana_core.dicom import orthanc_id
from diana_dcmdir import DcmDir


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("DIANA_PSEUDONYM_KEY", "parity-test-key")


def run(*args: str, code: int = 0) -> str:
    out = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert out.exit_code == code, out.output
    return out.output


@pytest.fixture
def incoming(tmp_path: Path) -> Path:
    folder = tmp_path / "incoming"
    folder.mkdir()
    for name in ("CT_small.dcm", "MR_small.dcm"):
        shutil.copy(get_testdata_file(name, download=False), folder / name)
    return folder


def originals(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(folder.glob("*.dcm"))]


def test_put_anonymize_never_writes_originals(incoming: Path, tmp_path: Path):
    dest = tmp_path / "research"
    data = json.loads(run("--json", "put", str(dest), str(incoming), "--anonymize"))
    assert data["done"] == 2 and not data["failed"]
    written = [pydicom.dcmread(p) for p in dest.rglob("*") if p.is_file()]
    assert len(written) == 2
    before = {(d.PatientID, str(d.PatientName), d.StudyInstanceUID) for d in originals(incoming)}
    for ds in written:
        assert (ds.PatientID, str(ds.PatientName), ds.StudyInstanceUID) not in before
        assert ds.PatientID not in {b[0] for b in before}


def test_upload_anonymize_goes_through_the_local_relay(incoming: Path, tmp_path: Path):
    run("index", str(incoming))
    dest = tmp_path / "uploaded"
    data = json.loads(run("--json", "upload", str(incoming), "default", str(dest), "--all", "--anonymize"))
    assert data["done"] == 2, data
    ids = {d.PatientID for d in originals(incoming)}
    assert all(pydicom.dcmread(p).PatientID not in ids for p in dest.rglob("*") if p.is_file())


def test_put_from_copies_whole_studies(clean_orthancs, tmp_path: Path):
    """Orthanc -> folder: a study id copies every instance of the study (as one streamed archive)."""
    from diana_orthanc import Orthanc
    from diana_orthanc.testdata import ct_bytes

    local = clean_orthancs.local
    pacs = Orthanc(**{k: v for k, v in local.service_desc().items() if k != "ctype"})
    for i in range(4):
        pacs.put(ct_bytes(i, study=0, series=i // 2, patient=1, run="putfrom"))
    [study] = pacs.inventory("studies")
    services = json.dumps({"pacs": local.service_desc()})
    out = tmp_path / "copy"
    data = json.loads(run("--json", "-s", services, "put", str(out), "--from", "pacs", study))
    assert data["done"] == 1 and not data["failed"]
    assert len(list(DcmDir(path=str(out)).index())) == 4


def test_export_png_names_files_by_orthanc_id(incoming: Path, tmp_path: Path):
    out = tmp_path / "png"
    data = json.loads(run("--json", "export-png", str(incoming), "CT_small.dcm", "MR_small.dcm", "-o", str(out)))
    assert len(data) == 2 and not any(v.startswith("error") for v in data.values())
    expected = {orthanc_id(d.PatientID, d.StudyInstanceUID, d.SeriesInstanceUID, d.SOPInstanceUID) + ".png"
                for d in originals(incoming)}
    assert {p.name for p in out.iterdir()} == expected
    from PIL import Image

    with Image.open(next(out.iterdir())) as im:
        assert im.mode == "L" and min(im.size) > 1 and im.getextrema()[1] > im.getextrema()[0]
    assert "error" in run("export-png", str(incoming), "missing.dcm", "-o", str(out), code=1)
