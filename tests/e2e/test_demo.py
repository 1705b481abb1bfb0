"""``diana demo``: the main job on embedded defaults (folders only), and against a real Orthanc as the PACS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

IDENTIFIERS = ("PatientID", "PatientName", "PatientBirthDate", "AccessionNumber", "StudyInstanceUID",
               "SeriesInstanceUID", "SOPInstanceUID", "InstitutionName", "ReferringPhysicianName")


def diana(*args: str, cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "diana_core.cli", "--json", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "DIANA_PSEUDONYM_KEY": ""})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def dicom_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]


def original_values(files: list[Path]) -> set[str]:
    values = set()
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        for key in IDENTIFIERS:
            value = str(ds.get(key, "") or "")
            if len(value) >= 4:
                values.add(value)
    return values


def assert_no_original_identifier(research: Path, originals: set[str]) -> None:
    files = dicom_files(research)
    assert files
    for path in files:
        raw = path.read_bytes()
        leaked = [v for v in originals if v.encode() in raw]
        assert not leaked, f"{path.name} still holds original identifiers"
        assert originals.isdisjoint(path.parts), "an original identifier is in a file name"
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.PatientIdentityRemoved == "YES"


def test_demo_on_embedded_defaults(tmp_path):
    out = tmp_path / "demo"
    summary = diana("demo", "--out", str(out), "--studies", "5", cwd=tmp_path)
    assert summary["studies_generated"] == 5 and summary["studies_collected"] == 5
    assert summary["studies_failed"] == 0 and summary["pseudonym_mappings"] == 5
    pacs_files = dicom_files(out / "pacs")
    assert summary["instances_pseudonymized"] == summary["instances_generated"] == len(pacs_files)
    assert len(dicom_files(out / "research")) == len(pacs_files)
    assert_no_original_identifier(out / "research", original_values(pacs_files))
    sheet = out / "contact-sheet.png"
    assert sheet.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and summary["series_on_contact_sheet"] > 5
    # the key file (original -> pseudonym) is beside the job, not in the data
    assert Path(summary["key_file"]).parent == out / "job"
    assert not any(p.name == "key.csv" for p in (out / "research").rglob("*"))

    again = diana("demo", "--out", str(out), "--studies", "5", "--keep", cwd=tmp_path)
    assert again["studies_skipped"] == 5 and again["studies_collected"] == 0


def test_demo_is_reproducible(tmp_path):
    a = diana("demo", "--out", str(tmp_path / "a"), "--studies", "2", cwd=tmp_path)
    b = diana("demo", "--out", str(tmp_path / "b"), "--studies", "2", cwd=tmp_path)
    names_a = sorted(p.name for p in dicom_files(tmp_path / "a" / "research"))
    names_b = sorted(p.name for p in dicom_files(tmp_path / "b" / "research"))
    assert names_a == names_b and a["instances_pseudonymized"] == b["instances_pseudonymized"]


def test_demo_against_a_real_orthanc_pacs(tmp_path, clean_orthancs):
    local = clean_orthancs.local
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"orthanc": local.service_desc()}))
    out = tmp_path / "demo"
    summary = diana("-s", str(services), "demo", "--pacs", "orthanc", "--out", str(out), "--studies", "3",
                    cwd=tmp_path)
    assert summary["studies_collected"] == 3 and summary["studies_failed"] == 0
    import requests

    stats = requests.get(f"{local.url}/statistics", auth=(local.user, local.password), timeout=10).json()
    assert stats["CountStudies"] == 3
    assert stats["CountInstances"] == summary["instances_generated"] == summary["instances_pseudonymized"]
    assert len(dicom_files(out / "research")) == stats["CountInstances"]
    session = requests.Session()
    session.auth = (local.user, local.password)
    originals = set()
    for oid in session.get(f"{local.url}/instances").json():
        tags = session.get(f"{local.url}/instances/{oid}/simplified-tags").json()
        originals |= {str(tags[k]) for k in IDENTIFIERS if len(str(tags.get(k, ""))) >= 4}
    assert_no_original_identifier(out / "research", originals)


@pytest.mark.parametrize("command", [["demo", "--help"], ["--help"]])
def test_help_teaches(command, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "diana_core.cli", *command], capture_output=True, text=True)
    assert proc.returncode == 0 and "Example" in proc.stdout or "Start here" in proc.stdout


def test_demo_out_never_removes_a_folder_it_did_not_create(tmp_path):
    precious = tmp_path / "checkout"
    (precious / "src").mkdir(parents=True)
    (precious / "src" / "work.py").write_text("print('hours of work')\n")
    proc = subprocess.run([sys.executable, "-m", "diana_core.cli", "demo", "--out", str(precious)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "was not made by diana demo" in proc.stderr, proc.stderr[-2000:]
    assert (precious / "src" / "work.py").read_text() == "print('hours of work')\n"
    assert sorted(p.name for p in precious.iterdir()) == ["src"]


def test_demo_out_replaces_only_a_previous_demo_folder(tmp_path):
    from diana_mock.demo import MARKER, clear_out_folder

    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / MARKER).write_text("made by diana demo\n")
    (previous / "research").mkdir()
    clear_out_folder(previous)
    assert not previous.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    clear_out_folder(empty)  # an empty folder is fine to write into
    assert empty.exists()
