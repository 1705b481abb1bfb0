"""The conformance kit (diana_core.testing.conformance) against a real folder: the CRUD contract.

No fault battery: a folder has no network between Diana and its storage. Its own faults: a file vanishing between
list and read (below), a read-only folder and a full disk (test_dcmdir_faults.py).
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
    faults_not_applicable = ("a local folder: no network between Diana and its storage (its own faults, read-only "
                             "folder, full disk, a file vanishing: test_dcmdir_faults.py and below)")
    not_applicable = {
        "study_exists_means_complete": "a folder cannot know how many instances a study should have; it counts "
                                       "what it holds only after the fact (no source to compare with)",
    }


def test_a_file_vanishing_between_list_and_read_is_reported_not_fatal(endpoint: DcmDir, items: list[Dixel]) -> None:
    """find() lists the folder lazily: a file deleted under it is recorded in last_report (never silently dropped,
    never a traceback) and the other files are still found; get() of it is NotFound."""
    import os

    from diana_core.errors import NotFound

    names = [endpoint.put(item) for item in items]
    found = endpoint.find({})
    first = next(found)
    gone = next(endpoint.fullpath(n) for n in names if endpoint.fullpath(n) != first.fn)
    os.remove(gone)
    rest = list(found)
    assert 1 + len(rest) == len(items) - 1
    report = endpoint.last_report
    assert report is not None and [p for p, _ in report.bad] == [gone]
    assert "FileNotFoundError" in report.bad[0][1]
    with pytest.raises(NotFound, match="conformance-dcmdir"):
        endpoint.get(os.path.basename(gone))
