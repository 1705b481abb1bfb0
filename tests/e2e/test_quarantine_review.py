"""The review loop on real job folders: the demo's held-back screens are listed, shown on a contact sheet,
cleaned and released through the job's engine; the demo with clean-pixels delivers them cleaned; put --anonymize
keeps what it holds back and cleans with --profile basic,clean-pixels."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner

from diana_core.cli.app import cli
from diana_mock.demo import run_demo
from diana_pixels.testing import dataset, draw, us_background


@pytest.fixture(autouse=True)
def _own_state(tmp_path, monkeypatch):
    """put/upload write their audit trail to the user's state folder: this test's own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def _dicoms(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".dcm", "")]


def _json(*args: str) -> object:
    result = CliRunner().invoke(cli, ["--json", *args])
    assert result.exit_code == 0, result.output + (result.stderr or "")
    return json.loads(result.stdout)


def test_demo_quarantine_list_show_clean_release(tmp_path):
    summary = run_demo(tmp_path / "demo", studies=3, seed="review")
    job, research = tmp_path / "demo" / "job", tmp_path / "demo" / "research"
    held = summary["instances_quarantined"]
    assert held >= 1 and Path(summary["quarantine_sheet"]).is_file()
    before = len(_dicoms(research))
    rows = _json("quarantine", "list", str(job))
    assert len(rows) == held and {r["state"] for r in rows} == {"waiting"}
    assert stat.S_IMODE((job / "quarantine").stat().st_mode) == 0o700

    cleaned = _json("quarantine", "clean", str(job))
    assert len(cleaned) == held and all(v.startswith("cleaned") for v in cleaned.values())
    assert all(int(v.split("(")[1].split()[0]) >= 3 for v in cleaned.values())  # name, ID, date on each screen
    png = tmp_path / "sheet.png"
    shown = _json("quarantine", "show", str(job), "--png", str(png))
    assert shown["instances"] == held and png.read_bytes()[:4] == b"\x89PNG"
    assert stat.S_IMODE(png.stat().st_mode) == 0o600

    first = rows[0]["id"]
    released = _json("quarantine", "release", str(job), first[:12])
    assert list(released.values())[0].startswith("released (cleaned)")
    after = _dicoms(research)
    assert len(after) == before + 1
    new = pydicom.dcmread(max(after, key=lambda p: p.stat().st_mtime))
    assert new.PatientIdentityRemoved == "YES" and new.BurnedInAnnotation == "NO"
    assert "113101" in [c.CodeValue for c in new.DeidentificationMethodCodeSequence]
    states = {r["id"]: r["state"] for r in _json("quarantine", "list", str(job))}
    assert states[first] == "released" and list(states.values()).count("cleaned") == held - 1
    again = CliRunner().invoke(cli, ["quarantine", "release", str(job), first])
    assert again.exit_code == 1 and "already released" in again.stdout
    log = [json.loads(line) for line in (job / "quarantine" / "log.jsonl").read_text().splitlines()]
    assert [e["event"] for e in log].count("release") == 1


def test_demo_with_clean_pixels_delivers_the_screens_cleaned(tmp_path):
    summary = run_demo(tmp_path / "demo", studies=3, seed="review", profile="basic,clean-pixels")
    assert summary["instances_quarantined"] == 0 and summary["instances_pixels_cleaned"] >= 1
    assert summary["instances_pseudonymized"] == summary["instances_generated"]
    assert len(_dicoms(tmp_path / "demo" / "research")) == summary["instances_generated"]
    rows = _json("quarantine", "list", str(tmp_path / "demo" / "job"))  # what was cleaned, for review
    assert [r["state"] for r in rows] == ["delivered"] * summary["instances_pixels_cleaned"]
    assert all(r["boxes"] >= 3 for r in rows)  # name, ID and date burned into each mock dose screen
    assert Path(summary["quarantine_sheet"]).read_bytes()[:4] == b"\x89PNG"


def test_put_anonymize_keeps_held_back_files_and_cleans_with_the_profile(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    image = us_background(seed=3)
    draw(image, [("DOE^JANE", "DejaVuSans.ttf", 16, (10, 8), 255)])
    dataset(image, "US").save_as(src / "us.dcm", enforce_file_format=True)
    held = CliRunner().invoke(cli, ["put", str(tmp_path / "out"), str(src), "--anonymize", "--unkeyed",
                                    "--job-dir", str(tmp_path / "job")])
    assert held.exit_code == 1 and "diana quarantine list" in held.output
    assert len(_json("quarantine", "list", str(tmp_path / "job"))) == 1
    done = _json("put", str(tmp_path / "clean"), str(src), "--anonymize", "--unkeyed",
                 "--profile", "basic,clean-pixels")
    assert done["done"] == 1
    [out] = _dicoms(tmp_path / "clean")
    assert pydicom.dcmread(out).BurnedInAnnotation == "NO"
    refused = CliRunner().invoke(cli, ["put", str(tmp_path / "x"), str(src), "--profile", "basic"])
    assert refused.exit_code == 2 and "--anonymize" in refused.output


def test_release_as_is_after_review_and_only_under_the_jobs_key(tmp_path, monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    dataset(us_background(seed=4), "US").save_as(src / "us.dcm", enforce_file_format=True)
    monkeypatch.setenv("DIANA_PSEUDONYM_KEY", "the-jobs-key-" + "x" * 32)
    job = tmp_path / "job"
    held = CliRunner().invoke(cli, ["put", str(tmp_path / "out"), str(src), "--anonymize", "--job-dir", str(job),
                                    "--profile", "basic"])
    assert held.exit_code == 1
    [row] = _json("quarantine", "list", str(job))
    refused = CliRunner().invoke(cli, ["quarantine", "release", str(job), row["id"]])
    assert refused.exit_code == 1 and "not cleaned" in refused.stdout and not _dicoms(tmp_path / "out")
    monkeypatch.setenv("DIANA_PSEUDONYM_KEY", "another-key-" + "y" * 32)
    other = CliRunner().invoke(cli, ["quarantine", "release", str(job), row["id"], "--as-is"])
    assert other.exit_code != 0 and "key" in (other.output + (other.stderr or "")) and not _dicoms(tmp_path / "out")
    monkeypatch.setenv("DIANA_PSEUDONYM_KEY", "the-jobs-key-" + "x" * 32)
    done = _json("quarantine", "release", str(job), row["id"], "--as-is")
    assert list(done.values())[0].startswith("released (as-is)")
    [out] = _dicoms(tmp_path / "out")
    released = pydicom.dcmread(out)
    assert released.PatientIdentityRemoved == "YES" and released.PatientName != "DOE^JANE"
    assert "113101" not in [c.CodeValue for c in released.DeidentificationMethodCodeSequence]
    trail = [json.loads(line) for line in (job / "audit.jsonl").read_text().splitlines()]
    released_lines = [r for r in trail if r["event"] == "item" and r["outcome"] == "released"]
    assert len(released_lines) == 1 and released_lines[0]["how"] == "as-is"
    assert {r["command"] for r in trail if r["event"] == "start"} >= {"quarantine release"}
    assert row["id"] not in (job / "audit.jsonl").read_text()  # ids hashed unless --show-ids
