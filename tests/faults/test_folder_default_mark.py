"""A watched folder with no ``state_file`` configured keeps its mark in $XDG_STATE_HOME/diana (#24): files dropped
while the daemon is down (killed with SIGKILL) are routed after a restart, and the start says so in one line;
``--from-now`` opts out."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pydicom

from diana_orthanc.testdata import ct_bytes
from tests.faults.helpers import DIANA, ENV, kill9, wait_for


def sop_uids(folder: Path) -> set[str]:
    return {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
            for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")}


def drop(folder: Path, start: int, count: int) -> set[str]:
    uids = set()
    for i in range(start, start + count):
        data = ct_bytes(i, study=i // 10, run="default-mark")
        (folder / f"f{i:03}.tmp").write_bytes(data)
        os.replace(folder / f"f{i:03}.tmp", folder / f"f{i:03}.dcm")  # how receivers finish a file
        uids.add(str(pydicom.dcmread(folder / f"f{i:03}.dcm", stop_before_pixels=True).SOPInstanceUID))
    return uids


def test_files_dropped_while_the_watcher_is_down_are_routed_without_a_state_file(tmp_path):
    inbox, out, state = tmp_path / "inbox", tmp_path / "archive", tmp_path / "state"
    inbox.mkdir()
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"inbox": {"ctype": "ObservableDcmDir", "path": str(inbox)},  # no state_file
                                    "archive": {"ctype": "DcmDir", "path": str(out)}}))
    env = {**ENV, "XDG_STATE_HOME": str(state)}
    cmd = [*DIANA, "-s", str(services), "watch", "-r", "upload_item", "inbox", "archive", "--interval", "0.05",
           "--deadletter", str(tmp_path / "dead.jsonl")]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_for(lambda: list(state.rglob("*.json")), what="the default mark written")
        early = drop(inbox, 0, 5)
        wait_for(lambda: out.exists() and sop_uids(out) >= early, what="5 files routed")
    finally:
        kill9(first)
    while_down = drop(inbox, 5, 10)
    assert not sop_uids(out) & while_down
    second = subprocess.Popen([*cmd, "--max-seconds", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env)
    try:
        wait_for(lambda: sop_uids(out) >= early | while_down or second.poll() is not None, what="15 files routed")
    finally:
        second.terminate()
        _, err = second.communicate(timeout=30)
    assert sop_uids(out) == early | while_down
    [mark] = state.rglob("*.json")  # names the watched folder: owner-only folders whatever the umask (#26)
    assert [oct(p.stat().st_mode & 0o777) for p in (mark.parent, mark.parent.parent)] == ["0o700", "0o700"]
    [line] = [x for x in err.splitlines() if x.startswith("catching up:")]
    caught = int(re.search(r"inbox: (\d+) file\(s\) changed since the last run", line).group(1))
    assert 10 <= caught <= 15 and str(state) in line  # the 5 routed just before the kill may repeat (at least once)

    skipped = drop(inbox, 15, 3)  # --from-now: what arrived while down is not caught up
    third = subprocess.run([*cmd, "--from-now", "--max-seconds", "3"], capture_output=True, text=True, env=env,
                           timeout=60)
    assert third.returncode == 0, third.stderr[-1000:]
    assert "catching up: inbox: from now on" in third.stderr
    assert not sop_uids(out) & skipped
