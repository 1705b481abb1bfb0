"""The embedded endpoints (no server): MemoryEndpoint and SqliteRegistry."""

import threading

import pytest

from diana_core import Dixel
from diana_core.embedded import MemoryEndpoint, SqliteRegistry
from diana_core.errors import NotFound, ValidationError


def _file_dixel(acc, n):
    return Dixel(tags={"AccessionNumber": acc}, meta={"FilePath": f"/data/{acc}/{n}.dcm"}, level="instances")


def test_memory_endpoint_crud():
    m = MemoryEndpoint()
    d = Dixel(tags={"PatientID": "P", "StudyInstanceUID": "1.2", "Modality": "CT"})
    oid = m.put(d)
    assert m.exists(oid) and m.get(d) is d
    assert m.find({"Modality": "CT"}) == [d] and m.find({"Modality": "MR"}) == []
    assert m.delete(d) and not m.exists(d)
    with pytest.raises(NotFound):
        m.get(oid)


def test_sqlite_registry_collections_counts_and_concurrency(tmp_path):
    reg = SqliteRegistry(path=str(tmp_path / "reg.sqlite"))
    threads = [threading.Thread(target=lambda a=a: reg.add_many([(_file_dixel(f"A{a}", n), "pre-", "AccessionNumber",
                                                                   "FilePath", None) for n in range(50)]))
               for a in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reg.add_to_collection(_file_dixel("A0", 0), prefix="pre-")  # duplicate: ignored
    assert reg.total("pre-") == 400
    assert sorted(reg.collections("pre-")) == [f"A{a}" for a in range(8)]
    assert len(reg.collected_items("A3", prefix="pre-")) == 50
    assert reg.total("other-") == 0
    # persisted on disk
    assert SqliteRegistry(path=str(tmp_path / "reg.sqlite")).total("pre-") == 400


def test_sqlite_registry_rejects_items_without_key():
    with pytest.raises(ValidationError, match="no AccessionNumber"):
        SqliteRegistry().add_to_collection(Dixel(meta={"FilePath": "x"}))
