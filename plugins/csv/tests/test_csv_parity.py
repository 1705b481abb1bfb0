"""The original's ``exists({"AccessionNumber": ...})`` on a CSV worklist."""

from __future__ import annotations

from pathlib import Path

import pytest

from diana_csv import CsvFile


def test_exists_with_a_query_mapping(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_text("AccessionNumber,StudyDescription\nA1,CT HEAD\nA2,MR BRAIN\n", encoding="utf-8")
    worklist = CsvFile(fp=str(path))
    assert worklist.exists({"AccessionNumber": "A2"})
    assert worklist.exists({"AccessionNumber": "A1", "StudyDescription": "CT HEAD"})
    assert not worklist.exists({"AccessionNumber": "A1", "StudyDescription": "MR BRAIN"})
    assert not CsvFile(fp=str(tmp_path / "missing.csv")).exists({"AccessionNumber": "A1"})


def test_put_ignores_columns_missing_from_the_header_unless_strict(tmp_path: Path) -> None:
    """The original wrote only the header's columns; ``strict: true`` refuses instead (#15 item 7)."""
    from diana_core import Dixel, load_services
    from diana_core.errors import ValidationError

    path = tmp_path / "log.csv"
    path.write_text("AccessionNumber,Modality\nA0,CT\n", encoding="utf-8")
    log = load_services({"log": {"ctype": "CsvFile", "fp": str(path)}})["log"]
    log.put(Dixel(tags={"AccessionNumber": "A1", "Modality": "MR", "StudyDescription": "MR BRAIN"}))
    log.close()
    assert path.read_text().splitlines() == ["AccessionNumber,Modality", "A0,CT", "A1,MR"]
    strict = load_services({"log": {"ctype": "CsvFile", "fp": str(path), "strict": True}})["log"]
    with pytest.raises(ValidationError, match="StudyDescription"):
        strict.put(Dixel(tags={"AccessionNumber": "A2", "StudyDescription": "CT HEAD"}))
    strict.close()
    assert "A2" not in path.read_text()
