"""CLI verbs the original's users scripted (#15 item 9): ``diana do SERVICE METHOD``, ``--format jsonl|csv|table``
for find/get, ``find ... --extract radcat`` on Montage reports, and ``-s`` taking inline YAML or ``@file``."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom.data import get_testdata_file

from diana_core.cli import cli


def run(*args: str, code: int = 0) -> str:
    out = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert out.exit_code == code, out.output
    return out.output


def test_do_calls_endpoint_methods_with_inline_yaml_services(tmp_path: Path):
    services = f"{{reg: {{ctype: SqliteRegistry, path: {tmp_path / 'r.sqlite'}}}}}"
    assert json.loads(run("--json", "-s", services, "do", "reg", "total")) == 0
    assert json.loads(run("--json", "-s", services, "do", "reg", "collected_items", "ACC1")) == []
    assert "methods:" in run("-s", services, "do", "reg", "nonesuch", code=2)
    assert "private" in run("-s", services, "do", "reg", "_conn", code=2)


def test_do_with_keyword_arguments_changes_a_file(folder: Path):
    assert json.loads(run("--json", "do", str(folder), "exists", "a.dcm")) is True
    run("do", str(folder), "update", "a.dcm", "-k", "data={StudyDescription: CHANGED BY DO}")
    assert json.loads(run("--json", "get", str(folder), "a.dcm", "-l", "instances"))["tags"][
        "StudyDescription"] == "CHANGED BY DO"


def test_services_from_an_at_file(tmp_path: Path):
    f = tmp_path / "services.yml"
    f.write_text(f"reg: {{ctype: SqliteRegistry, path: {tmp_path / 'r.sqlite'}}}\n")
    assert json.loads(run("--json", "-s", f"@{f}", "do", "reg", "total")) == 0
    assert "neither a file nor valid inline YAML" in run("-s", "{bad: [", "check", code=1)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copy(get_testdata_file("CT_small.dcm", download=False), tmp_path / "a.dcm")
    shutil.copy(get_testdata_file("MR_small.dcm", download=False), tmp_path / "b.dcm")
    return tmp_path


def test_find_formats(folder: Path):
    lines = run("find", str(folder), "PatientID=*", "-l", "instances", "--format", "jsonl").splitlines()
    rows = [json.loads(line) for line in lines]
    assert sorted(r["Modality"] for r in rows) == ["CT", "MR"] and all("meta.FileName" in r for r in rows)
    table = list(csv.DictReader(io.StringIO(run("find", str(folder), "Modality=CT", "-l", "instances",
                                                "--format", "csv"))))
    assert len(table) == 1 and table[0]["Modality"] == "CT" and table[0]["level"] == "instances"
    assert "Modality" in run("find", str(folder), "Modality=MR", "-l", "instances", "--format", "table")


def test_get_format_jsonl(folder: Path):
    out = run("get", str(folder), "a.dcm", "-l", "instances", "--format", "jsonl")
    assert json.loads(out)["Modality"] == "CT"


def test_find_montage_extract_radcat_lungrads():
    from diana_montage.testing import FakeMontage, make_reports

    reports = make_reports(3)
    reports[0]["text"] = "<p>IMPRESSION: nodule. Lung-RADS category 3.</p><p>RADCAT Grade: R3</p>"
    reports[1]["text"] = "<p>BI-RADS CATEGORY 4 suspicious</p>"
    fake = FakeMontage(reports=reports).start()
    try:
        services = json.dumps({"montage": fake.service_desc()})
        rows = json.loads(run("--json", "-s", services, "find", "montage", "q=", "--extract", "radcat",
                              "--extract", "lungrads", "--extract", "birads"))
    finally:
        fake.stop()
    extracted = {r["tags"]["AccessionNumber"]: r["extracted"] for r in rows}
    assert extracted["ACC00000"] == {"radcat": "3", "radcat3": True, "lungrads": "3", "birads": None}
    assert extracted["ACC00001"]["birads"] == "4" and extracted["ACC00001"]["radcat"] is None
