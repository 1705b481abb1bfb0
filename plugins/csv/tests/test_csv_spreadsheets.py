"""Worklists as sites export them: ';' and tab separated files, a misnamed key column, Excel workbooks (.xlsx)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from diana_core.errors import ConfigError, ValidationError
from diana_csv import CsvFile


def diana(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DIANA_SERVICES", "DIANA_LOG_FORMAT")}
    env["XDG_CONFIG_HOME"] = str(cwd / "config")
    return subprocess.run([sys.executable, "-m", "diana_core", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


@pytest.mark.parametrize("sep", [";", "\t", ","], ids=["semicolon", "tab", "comma"])
def test_the_separator_is_sniffed_and_the_header_is_never_a_study(tmp_path, sep):
    path = tmp_path / "wl.csv"
    path.write_text(sep.join(["AccessionNumber", "StudyDescription"]) + "\n" + sep.join(["A1", "CT, CHEST"
                    if sep != "," else '"CT, CHEST"']) + "\n" + sep.join(["A2", "MR"]) + "\n", encoding="utf-8")
    items = list(CsvFile(fp=str(path)).items(required=["AccessionNumber"]))
    assert [d.sid() for d in items] == ["A1", "A2"]
    assert items[0].tags["StudyDescription"] == "CT, CHEST"


def test_a_single_column_and_a_headerless_list_still_read_as_before(tmp_path):
    (tmp_path / "one.csv").write_text("AccessionNumber\nA1;B\n")  # ';' in a value of a one-column file
    (tmp_path / "ids.csv").write_text("12345\n12346\n")
    assert [d.sid() for d in CsvFile(fp=str(tmp_path / "one.csv"))] == ["A1;B"]
    assert [d.sid() for d in CsvFile(fp=str(tmp_path / "ids.csv"))] == ["12345", "12346"]


def test_a_missing_key_column_names_the_columns_found_and_the_closest(tmp_path):
    (tmp_path / "wl.csv").write_text("Accession;Patient Name\nSECRET1;DOE^J\n")
    with pytest.raises(ValidationError) as info:
        list(CsvFile(fp=str(tmp_path / "wl.csv"), key="AccessionNumber").items(required=["AccessionNumber"]))
    message = str(info.value)
    assert "'Accession', 'Patient Name'" in message and "--key-column 'Accession'" in message, message
    assert "SECRET1" not in message and "DOE" not in message  # column names only, never cell values


def test_collect_on_a_misnamed_column_says_which_columns_there_are_in_one_line(tmp_path):
    (tmp_path / "pacs").mkdir()
    (tmp_path / "wl.csv").write_text("Accession;Name\nSECRETACC1;X\n")
    out = diana("collect", "wl.csv", "./pacs", "./research", "--job-dir", "job", "--unkeyed", cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "columns found: 'Accession', 'Name'" in out.stderr and "--key-column 'Accession'" in out.stderr
    assert "SECRETACC1" not in out.stderr
    # the suggested option works: the study is looked for (and not found in the empty PACS folder)
    out = diana("--json", "collect", "wl.csv", "./pacs", "./research", "--job-dir", "job", "--unkeyed",
                "--key-column", "Accession", cwd=tmp_path)
    assert '"studies": 1' in out.stdout and '"failed": 1' in out.stdout, out.stdout + out.stderr


def write_xlsx(path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(["AccessionNumber", "StudyDate", "Note"])
    sheet.append([123456, datetime(2020, 1, 2), "first"])  # typed as a number in Excel: no "123456.0"
    sheet.append([None, None, None])  # an empty row in the middle is skipped, row numbers stay Excel's
    sheet.append(["ACC-7", None, "third"])
    book.save(path)


def test_xlsx_first_sheet_is_read_with_excel_row_numbers(tmp_path):
    write_xlsx(tmp_path / "wl.xlsx")
    items = list(CsvFile(fp=str(tmp_path / "wl.xlsx")).items(required=["AccessionNumber"]))
    assert [d.sid() for d in items] == ["123456", "ACC-7"]
    assert items[0].tags["StudyDate"] == "2020-01-02" and "StudyDate" not in items[1].tags
    book = Workbook()
    for row in (["AccessionNumber", "Note"], ["A1", "x"], [None], [None], ["", "stray"]):  # row 5: no key
        book.active.append(row)
    book.save(tmp_path / "gap.xlsx")
    with pytest.raises(ValidationError, match="row 5 has no value for required column 'AccessionNumber'"):
        list(CsvFile(fp=str(tmp_path / "gap.xlsx")).items(required=["AccessionNumber"]))


def test_not_a_workbook_and_writing_to_xlsx_are_one_line_errors(tmp_path):
    (tmp_path / "fake.xlsx").write_text("AccessionNumber\nA1\n")
    with pytest.raises(ConfigError, match="not a readable .xlsx workbook"):
        list(CsvFile(fp=str(tmp_path / "fake.xlsx")))
    from diana_core import Dixel

    with pytest.raises(ConfigError, match="name a .csv file"):
        CsvFile(fp=str(tmp_path / "out.xlsx")).put(Dixel(tags={"AccessionNumber": "A1"}))


def test_collect_reads_an_xlsx_worklist(tmp_path):
    (tmp_path / "pacs").mkdir()
    write_xlsx(tmp_path / "wl.xlsx")
    out = diana("--json", "collect", "wl.xlsx", "./pacs", "./research", "--job-dir", "job", "--unkeyed", cwd=tmp_path)
    assert '"studies": 2' in out.stdout and '"failed": 2' in out.stdout, out.stdout + out.stderr
    failures = (tmp_path / "job" / "failures.csv").read_text()
    assert "123456" in failures and "ACC-7" in failures and "123456.0" not in failures
