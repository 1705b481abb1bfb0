"""Sinks that retrievals and the receiver write through: atomic files, zips renamed into place only on success."""

from __future__ import annotations

import os
import shutil
import zipfile

import pytest

from diana_core.delivery import MARK_SUFFIX, PendingMarks
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


class Killed(BaseException):
    """The process dying at this point (nothing after it runs)."""


@pytest.mark.parametrize("step", range(6))
def test_a_kill_at_any_step_of_adopting_leaves_each_file_in_incoming_or_marked_in_place(tmp_path, monkeypatch, step):
    """storescp has answered success for these files: whatever point the take-in dies at, each is either still in
    .incoming (adopted again at the next start) or in place with its pending mark (replayed), never in place
    without a mark (never routed: the loss the SIGKILL test found)."""
    incoming = tmp_path / "in" / ".incoming"
    incoming.mkdir(parents=True)
    files = []
    for i in range(3):
        (incoming / f"f{i}.dcm").write_bytes(b"instance %d" % i)
        files.append((f"1.2.3.{i}", {"StudyInstanceUID": "1.2.3"}, incoming / f"f{i}.dcm"))
    sink = FolderSink(tmp_path / "in", by_study=True, durable=True, mark=True)
    done, rename = 0, os.replace

    def dies_at_step(real):
        def call(path, *args, **kwargs):
            nonlocal done
            if real is rename or str(path).endswith(MARK_SUFFIX):  # the steps that move or mark a file
                if done == step:
                    raise Killed
                done += 1
            return real(path, *args, **kwargs)
        return call

    monkeypatch.setattr(os, "replace", dies_at_step(os.replace))
    monkeypatch.setattr(os, "open", dies_at_step(os.open))
    with pytest.raises(Killed):
        sink.adopt_many(files)
    monkeypatch.undo()
    marked = set(PendingMarks(tmp_path / "in").pending())
    for sop_uid, _, src in files:
        placed = tmp_path / "in" / "1.2.3" / f"{sop_uid}.dcm"
        assert src.exists() != placed.exists(), sop_uid
        assert src.exists() or placed in marked, f"{sop_uid} in place without its mark at step {step}"
