"""Folder watching under faults, against real `diana watch` OS processes: files written into a watched folder while
the daemon is down (killed with SIGKILL at a random point) are routed when it starts again, each exactly once; two
routes on one folder each run once per file."""

from __future__ import annotations

import json
import os
import random
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from diana_orthanc.testdata import write_small_ct
from tests.faults.helpers import DIANA, ENV, kill9, wait_for
from tests.faults.test_watch_faults import files_in, sop_uids


def make_files(folder: Path, n: int, tag: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        path = folder / f"{tag}-{i}.dcm"
        write_small_ct(path, f"ACC{tag}", i + 1, patient_id=f"P{tag}", patient_name="Fault^Folder",
                       study_uid=f"1.2.826.0.1.3680043.8.498.77.{sum(map(ord, tag))}")
        out.append(path)
    return out


def drop(src: Path, inbox: Path) -> None:
    """Copy under a hidden name, then rename into place (how DICOM receivers write)."""
    tmp = inbox / f".{src.name}.part"
    shutil.copy(src, tmp)
    os.replace(tmp, inbox / src.name)


def services(tmp_path: Path, state: bool = True) -> Path:
    inbox, archive = tmp_path / "inbox", tmp_path / "archive"
    inbox.mkdir(exist_ok=True)
    desc = {"ctype": "ObservableDcmDir", "path": str(inbox), "settle_interval": 0.05, "polling_interval": 0.05}
    if state:
        desc["state_file"] = str(tmp_path / "state" / "inbox.json")
    path = tmp_path / "services.json"
    path.write_text(json.dumps({"inbox": desc, "archive": {"ctype": "DcmDir", "path": str(archive)}}))
    return path


def watch(svc: Path, *routes: str, tmp_path: Path) -> subprocess.Popen:
    args = [a for r in routes for a in ("-r", *r.split())]
    return subprocess.Popen([*DIANA, "-s", str(svc), "watch", *args, "--interval", "0.05", "--deadletter",
                             str(tmp_path / "dead.jsonl")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV)


def wait_watching(proc: subprocess.Popen, state: Path) -> None:
    """The folder watch is live once the daemon wrote its mark (first start) or read it (restart)."""
    before = state.stat().st_mtime_ns if state.exists() else 0
    wait_for(lambda: proc.poll() is not None or (state.exists() and state.stat().st_mtime_ns != before),
             what="the folder watch to start")
    assert proc.poll() is None, proc.stderr.read()[-2000:] if proc.stderr else ""


@pytest.mark.parametrize("seed_value", [21, 22])
def test_files_written_while_the_daemon_is_down_are_routed_on_restart_exactly_once(tmp_path, seed_value):
    rng = random.Random(seed_value)
    svc = services(tmp_path)
    inbox, archive, state = tmp_path / "inbox", tmp_path / "archive", tmp_path / "state" / "inbox.json"
    files = make_files(tmp_path / "src", 24, tag=str(seed_value))
    proc = watch(svc, "put_item inbox archive", tmp_path=tmp_path)
    wait_watching(proc, state)
    first = rng.randint(6, 14)
    for path in files[:first]:
        drop(path, inbox)
    kill_at = rng.randint(1, first - 1)
    wait_for(lambda: (archive.exists() and files_in(archive) >= kill_at) or proc.poll() is not None,
             what=f"{kill_at} files routed")
    kill9(proc)
    for path in files[first:]:  # written while no daemon runs
        drop(path, inbox)
    proc = watch(svc, "put_item inbox archive", tmp_path=tmp_path)
    try:
        wait_for(lambda: files_in(archive) >= len(files) or proc.poll() is not None, what="every file routed")
    finally:
        kill9(proc)
    uids = sop_uids(archive)
    assert len(uids) == len(files) and max(uids.values()) == 1


def test_two_routes_on_one_folder_each_run_once_per_file(tmp_path):
    """A folder path as the source of two routes: one observer, each route once per file (it was 2 x 2)."""
    svc = services(tmp_path, state=False)
    inbox = tmp_path / "inbox"
    files = make_files(tmp_path / "src", 4, tag="two")
    proc = subprocess.Popen([*DIANA, "-v", "-s", str(svc), "watch", "-r", "say", str(inbox), "-", "-r", "put_item",
                             str(inbox), "archive", "--interval", "0.05", "--deadletter", str(tmp_path / "dead.jsonl")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        seen, deadline = "", time.monotonic() + 60
        while "watching its folder" not in seen:  # the daemon logs when the folder watch is live
            assert time.monotonic() < deadline and proc.poll() is None, seen[-2000:]
            if select.select([proc.stderr], [], [], 0.5)[0]:
                seen += proc.stderr.readline()
        for path in files:
            drop(path, inbox)
        wait_for(lambda: (tmp_path / "archive").exists() and files_in(tmp_path / "archive") >= 4,
                 what="4 files routed")
    finally:
        proc.terminate()
        stdout, _ = proc.communicate(timeout=60)
    said = [line for line in stdout.splitlines() if line.startswith(f"{inbox}: ")]
    assert len(said) == 4, stdout
    assert "handled 8," in stdout
