"""Diana's conformance kit run on this plugin's endpoint (needs `pip install "diana-dicom[testing]"`)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from diana_core import Dixel
from diana_core.testing.conformance import EndpointContract
from diana_jsondir.endpoint import JsonDir


@pytest.fixture
def endpoint(tmp_path: Path) -> JsonDir:
    """A live, empty endpoint."""
    return JsonDir(name="conformance-jsondir", path=str(tmp_path / "store"))


@pytest.fixture
def items() -> list[Dixel]:
    """Instances of one study the endpoint can store (JsonDir keeps tags only: no file bytes needed)."""
    study, series = f"2.25.{uuid.uuid4().int}", f"2.25.{uuid.uuid4().int}"
    return [Dixel(tags={"PatientID": "P1", "StudyInstanceUID": study, "SeriesInstanceUID": series,
                        "SOPInstanceUID": f"2.25.{uuid.uuid4().int}"}, level="instances") for _ in range(2)]


class TestJsonDirContract(EndpointContract):
    levels = ("instances",)  # one file per item, no study or series roll-up
    faults_not_applicable = "a local folder: no network between Diana and its storage"
    not_applicable = {"study_exists_means_complete": "a JSON folder keeps what it was given; it cannot know how "
                                                     "many instances a study should have"}
    # a network endpoint adds: class TestMyFaults(EndpointFaults) with fixtures upstream and endpoint_at
