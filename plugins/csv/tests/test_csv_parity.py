"""The original's ``exists({"AccessionNumber": ...})`` on a CSV worklist."""

from __future__ import annotations

from pathlib import Path

from diana_csv import CsvFile


def test_exists_with_a_query_mapping(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text("AccessionNumber,StudyDescription\nA1,CT HEAD\nA2,MR BRAIN\n", encoding="utf-8")
    worklist = CsvFile(fp=str(path))
    assert worklist.exists({"AccessionNumber": "A2"})
    assert worklist.exists({"AccessionNumber": "A1", "StudyDescription": "CT HEAD"})
    assert not worklist.exists({"AccessionNumber": "A1", "StudyDescription": "MR BRAIN"})
    assert not CsvFile(fp=str(tmp_path / "missing.csv")).exists({"AccessionNumber": "A1"})
