"""The conformance kit (diana_core.testing.conformance) against a real folder: the CRUD contract.

No fault battery: a folder has no network between Diana and its storage (its faults - read-only folder, a file
vanishing between list and read - are in tests/faults/test_folder_faults.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydicom import dcmread

from diana_core import Dixel
from diana_core.testing.conformance import EndpointContract
from diana_dcmdir import DcmDir


@pytest.fixture
def items(study: dict[str, Any]) -> list[Dixel]:
    import io

    return [Dixel.from_pydicom(dcmread(io.BytesIO(data)), file=data) for data in study["files"]]


@pytest.fixture
def endpoint(tmp_path: Any) -> DcmDir:
    return DcmDir(name="conformance-dcmdir", path=str(tmp_path / "folder"))


class TestDcmDirContract(EndpointContract):
    levels = ("studies", "instances")  # series are not a unit of a folder: files are instances, studies are indexed
    not_applicable = {
        "study_exists_means_complete": "a folder cannot know how many instances a study should have; it counts "
                                       "what it holds only after the fact (no source to compare with)",
    }
