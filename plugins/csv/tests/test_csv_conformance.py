"""The conformance kit (diana_core.testing.conformance) against a real CSV file: the contract a worklist can keep."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from diana_core import Dixel
from diana_core.testing.conformance import EndpointContract
from diana_csv import CsvFile

APPEND_ONLY = "a CSV worklist is an append-only list of rows; removing a row rewrites the file: no delete()"


@pytest.fixture
def items() -> list[Dixel]:
    study = f"2.25.{uuid.uuid4().int}"
    return [Dixel(tags={"AccessionNumber": f"CONF{uuid.uuid4().hex[:8]}", "PatientID": "P1",
                        "StudyInstanceUID": study, "SeriesInstanceUID": f"{study}.1",
                        "SOPInstanceUID": f"{study}.1.{i}"}, level="instances") for i in range(2)]


@pytest.fixture
def endpoint(tmp_path: Path) -> CsvFile:
    return CsvFile(name="conformance-csv", fp=str(tmp_path / "worklist.csv"), level="instances")


class TestCsvFileContract(EndpointContract):
    levels = ("instances",)  # one row per item, keyed by accession number
    faults_not_applicable = "a local file: no network between Diana and its storage"
    identity_key = "AccessionNumber"
    not_applicable = {
        "delete_removes": APPEND_ONLY,
        "unknown_keyword_delete": APPEND_ONLY,
        "study_exists_means_complete": "a worklist names studies; it holds no instances to count",
        "put_twice_is_idempotent": "a worklist is a log of rows: a second put is a second row, as the original "
                                   "wrote it; readers (the collector) key on the accession number",
    }
