"""The original DIANA's Orthanc calls against a real Orthanc: ``exists(query)``, ``clear()`` behind a guard, and
ObservableOrthanc's cursor methods (``persist_current_change``, ``persist_last_change``, ``set_persist_file``)."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from diana_core.errors import ValidationError
from diana_orthanc import ObservableOrthanc, Orthanc


def _desc(server) -> dict:
    return {k: v for k, v in server.service_desc().items() if k != "ctype"}


@pytest.fixture
def ct_bytes(dicom_testfiles) -> tuple[bytes, pydicom.Dataset]:
    path = next(p for p in dicom_testfiles if p.endswith("CT_small.dcm"))
    return Path(path).read_bytes(), pydicom.dcmread(path, stop_before_pixels=True)


def test_exists_with_a_query_mapping(clean_orthancs, ct_bytes):
    local = Orthanc(**_desc(clean_orthancs.local), name="local")
    data, ds = ct_bytes
    assert not local.exists({"StudyInstanceUID": ds.StudyInstanceUID})
    local.put(data)
    assert local.exists({"StudyInstanceUID": ds.StudyInstanceUID})
    assert local.exists({"SOPInstanceUID": ds.SOPInstanceUID}, level="instances")
    assert not local.exists({"StudyInstanceUID": "1.2.3.404"})


def test_clear_needs_confirmation_then_empties_the_server(clean_orthancs, ct_bytes):
    local = ObservableOrthanc(**_desc(clean_orthancs.local), name="local")
    local.put(ct_bytes[0])
    with pytest.raises(ValidationError, match="confirm=True"):
        local.clear()
    assert local.statistics()["CountInstances"] == 1
    assert local.clear(confirm=True) == 1
    assert local.statistics()["CountInstances"] == 0


def test_cursor_aliases_persist_and_switch_files(clean_orthancs, ct_bytes, tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    obs = ObservableOrthanc(**_desc(clean_orthancs.local), name="obs", start_from_change=0)
    assert obs.set_persist_file(first) == str(first)
    obs.persist_current_change()
    assert json.loads(first.read_text())["last_change"] == 0
    Orthanc(**_desc(clean_orthancs.local)).put(ct_bytes[0])
    last = obs.persist_last_change()
    assert last > 0 and json.loads(first.read_text())["last_change"] == last
    assert obs.changes() == []  # skipped to the newest change: the upload is not replayed
    obs.set_persist_file(second)
    obs.persist_current_change()  # a fresh file: the cursor starts from start_from_change again
    assert json.loads(second.read_text())["last_change"] == 0
    assert obs.changes()  # ... so the upload's changes are reported from this cursor
