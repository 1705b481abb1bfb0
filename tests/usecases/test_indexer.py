"""FileIndexer on real DICOM files written with pydicom, into the embedded SqliteRegistry and a MemoryEndpoint."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset

from diana_core import Dixel, FileIndexer
from diana_core.embedded import MemoryEndpoint, SqliteRegistry
from diana_core.errors import InvalidDicom
from diana_core.usecases.indexer import walk_files
from diana_orthanc.testdata import write_small_ct


def write_instance(path: Path, accession: str, n: int) -> Dataset:
    return write_small_ct(path, accession, n, patient_name="Doe^Jane")


def pydicom_reader(path: str) -> Dixel:
    """The test's header reader (the DcmDir plugin provides the real one)."""
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
    except (pydicom.errors.InvalidDicomError, EOFError, OSError) as exc:
        raise InvalidDicom(f"{os.path.basename(path)}: not DICOM ({type(exc).__name__})") from None
    return Dixel.from_pydicom(ds, fn=path)


@pytest.fixture()
def tree(tmp_path: Path) -> dict[str, Any]:
    """3 studies x 4 files in nested folders, 2 bad .dcm files, 1 non-matching file, 1 hidden folder."""
    base = tmp_path / "data"
    for a, acc in enumerate(("ACC1", "ACC2", "ACC3")):
        for n in range(4):
            write_instance(base / f"site{a % 2}" / acc / f"im{n}.dcm", acc, n)
    (base / "site0" / "junk.dcm").write_bytes(b"not dicom at all" * 10)
    (base / "site1" / "deep" / "empty.dcm").parent.mkdir(parents=True)
    (base / "site1" / "deep" / "empty.dcm").write_bytes(b"")
    (base / "notes.txt").write_text("ignore me")
    write_instance(base / ".hidden" / "skip.dcm", "HIDDEN", 0)
    return {"base": base, "good": 12, "bad": 2}


def test_index_path_registers_good_files_and_reports_bad_ones(tree):
    reg = SqliteRegistry()
    result = FileIndexer().index_path(tree["base"], reg, reader=pydicom_reader)
    assert (result.checked, result.registered, result.bad_count) == (14, 12, 2)
    assert sorted(name for name, _ in result.bad) == ["site0/junk.dcm", "site1/deep/empty.dcm"]
    assert all("not DICOM" in why for _, why in result.bad)
    prefix = FileIndexer.prefix_for_path(str(tree["base"]))
    assert result.prefix == prefix and len(prefix) == 5 and prefix.endswith("-")
    assert list(reg.collections(prefix)) == ["ACC1", "ACC2", "ACC3"]
    assert reg.collected_items("ACC2", prefix) == [f"site1/ACC2/im{n}.dcm" for n in range(4)]
    assert FileIndexer.files_on_path(str(tree["base"]), reg) == 12


def test_parallel_counters_match_serial(tree):
    serial = FileIndexer(batch_size=5).index_path(tree["base"], SqliteRegistry(), reader=pydicom_reader)
    reg = SqliteRegistry()
    parallel = FileIndexer(pool_size=3, batch_size=5).index_path(tree["base"], reg, reader=pydicom_reader)
    assert (parallel.checked, parallel.registered, parallel.bad_count) == (serial.checked, serial.registered,
                                                                           serial.bad_count)
    assert reg.total(parallel.prefix) == 12


def test_orthanc_layout_and_quarantine(tmp_path):
    base = tmp_path / "orthanc-db"
    write_instance(base / "ab" / "cd" / "0f1e2d3c", "ACC9", 1)
    write_instance(base / "ab" / "ef" / "9a8b7c6d", "ACC9", 2)
    (base / "ab" / "ef" / "broken").write_bytes(b"\x00" * 10)
    write_instance(base / "not-hex" / "cd" / "ignored", "ACC0", 1)
    (base / "index").write_bytes(b"sqlite index of orthanc, not a storage dir")
    assert sorted(os.path.basename(p) for p in walk_files(base, "*", "ORTHANC")) == ["0f1e2d3c", "9a8b7c6d",
                                                                                       "broken"]
    quarantine = tmp_path / "bad"
    result = FileIndexer().index_path(base, SqliteRegistry(), rex="*", recurse_style="ORTHANC",
                                      reader=pydicom_reader, quarantine=quarantine)
    assert (result.registered, result.bad_count, result.quarantined) == (2, 1, 1)
    assert (quarantine / "ab" / "ef" / "broken").exists() and not (base / "ab" / "ef" / "broken").exists()


def test_registry_without_add_many_is_used_one_by_one(tree):
    class PlainRegistry:
        def __init__(self):
            self.sets: dict[str, set[str]] = {}

        def add_to_collection(self, item, prefix="", collection_key="AccessionNumber", item_key="FilePath",
                              path=None):
            self.sets.setdefault(prefix + item.tag(collection_key), set()).add(item.meta[item_key])

        def collections(self, prefix=""):
            return [k[len(prefix):] for k in self.sets if k.startswith(prefix)]

        def collected_items(self, collection, prefix=""):
            return sorted(self.sets.get(prefix + collection, ()))

    reg = PlainRegistry()
    result = FileIndexer().index_path(tree["base"], reg, reader=pydicom_reader)
    assert result.registered == 12 and FileIndexer.files_on_path(str(tree["base"]), reg) == 12


def test_upload_collection_and_path_skip_what_is_there(tree):
    reg, dest = SqliteRegistry(), MemoryEndpoint()
    indexer = FileIndexer()
    indexer.index_path(tree["base"], reg, reader=pydicom_reader)
    seen = []
    one = indexer.upload_collection("ACC1", tree["base"], reg, dest, reader=pydicom_reader,
                                    progress=lambda done, total: seen.append((done, total)))
    assert (one.done, one.skipped, one.failed) == (4, 0, []) and len(dest) == 4
    assert seen[-1] == (4, 4)
    stored = next(iter(dest._items.values()))
    assert stored.file.startswith(b"\x00" * 128) and stored.file[128:132] == b"DICM"  # the whole file went
    os.remove(tree["base"] / "site0" / "ACC3" / "im0.dcm")  # vanished since indexing: reported, not fatal
    everything = indexer.upload_path(tree["base"], reg, dest, reader=pydicom_reader, check_exists=True)
    assert (everything.done, everything.skipped) == (7, 4)
    assert [f for f, _ in everything.failed] == ["site0/ACC3/im0.dcm"] and len(dest) == 11
