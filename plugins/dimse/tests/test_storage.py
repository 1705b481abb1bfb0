"""Sinks that retrievals and the receiver write through: atomic files, zips renamed into place only on success."""

from __future__ import annotations

import shutil
import zipfile

from diana_dimse.storage import FolderSink, ZipSink


def test_folder_sink_writes_atomically_and_survives_its_folder_being_removed(tmp_path):
    sink = FolderSink(tmp_path / "in", by_study=True)
    first = sink.add("1.2.3", {"StudyInstanceUID": "1.2"}, b"one")
    assert first == tmp_path / "in" / "1.2" / "1.2.3.dcm" and first.read_bytes() == b"one"
    shutil.rmtree(tmp_path / "in" / "1.2")  # e.g. a routed study deleted by remove_src
    again = sink.add("1.2.4", {"StudyInstanceUID": "1.2"}, b"two")
    assert again.read_bytes() == b"two" and sink.count == 2
    assert not [p for p in (tmp_path / "in").rglob(".*")]


def test_zip_sink_appears_only_when_the_retrieval_succeeded(tmp_path):
    ok = ZipSink(tmp_path / "ok.zip")
    ok.add("1.2.3", {}, b"data")
    ok.close(ok=True)
    with zipfile.ZipFile(tmp_path / "ok.zip") as archive:
        assert archive.read("1.2.3.dcm") == b"data"
    failed = ZipSink(tmp_path / "failed.zip")
    failed.add("1.2.3", {}, b"data")
    failed.close(ok=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ok.zip"]
