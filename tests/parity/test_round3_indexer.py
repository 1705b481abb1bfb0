"""#30 items 5, 6, 9: ``FileIndexer.items_on_path`` names the collections, ``create_pool()`` exists on the indexer
and the collector, and ``diana.daemons.file_indexer.index_file`` / ``put_inst`` work as module-level functions
(through the alias-only harness), on real DICOM files and the embedded registry/endpoint."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from diana_core import Collector, FileIndexer
from diana_core.embedded import MemoryEndpoint, SqliteRegistry
from diana_core.errors import InvalidDicom
from diana_orthanc.testdata import write_small_ct
from tests.parity import aliases


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    base = tmp_path / "data"
    for acc in ("ACC1", "ACC2"):
        for n in range(3):
            write_small_ct(base / acc / f"im{n}.dcm", acc, n, patient_name="Doe^Jane")
    (base / "junk.dcm").write_bytes(b"not dicom" * 20)
    return base


def test_items_on_path_names_the_collections_and_files_on_path_counts(folder):
    reg = SqliteRegistry()
    FileIndexer(pool_size=2).index_path(folder, reg)
    assert sorted(FileIndexer.items_on_path(str(folder), reg)) == ["ACC1", "ACC2"]
    assert FileIndexer.files_on_path(str(folder), reg) == 6
    assert FileIndexer.items_on_path(str(folder / "elsewhere"), reg) == []


def test_create_pool_is_optional_and_keeps_the_pool_size(folder):
    indexer = FileIndexer(pool_size=3)
    assert indexer.create_pool() is indexer and indexer.pool_size == 3
    collector = Collector(4)  # the original's positional pool_size
    assert collector.create_pool() is collector and collector.pool_size == 4
    reg = SqliteRegistry()
    assert indexer.create_pool().index_path(folder, reg).registered == 6


def test_module_level_index_file_and_put_inst_through_the_original_module_name(folder, monkeypatch):
    aliases.install(monkeypatch)
    from diana.daemons.file_indexer import FileIndexer as OldIndexer
    from diana.daemons.file_indexer import index_file, put_inst

    reg = SqliteRegistry()
    checked, registered, uploaded = (multiprocessing.Value("i", 0) for _ in range(3))
    prefix = OldIndexer.prefix_for_path(str(folder))
    for fn in sorted(folder.glob("ACC1/*.dcm")):
        index_file(str(fn), path=str(folder), reg=reg, prefix=prefix, _checked=checked, _registered=registered)
    assert reg.collected_items("ACC1", prefix) == [f"ACC1/im{n}.dcm" for n in range(3)]
    assert (checked.value, registered.value) == (3, 3)
    with pytest.raises(InvalidDicom, match="junk.dcm"):
        index_file(str(folder / "junk.dcm"), path=str(folder), reg=reg)
    assert checked.value == 3  # counters only move with the caller's Values

    dest = MemoryEndpoint()
    ids = [put_inst(str(fn), dest, _uploaded=uploaded) for fn in sorted(folder.glob("ACC2/*.dcm"))]
    assert len(set(ids)) == 3 and uploaded.value == 3
    assert len(list(dest.find({"AccessionNumber": "ACC2"}, level="instances"))) == 3
