"""`diana watch` under faults, against real processes: the daemon (an OS process) is killed with SIGKILL at random
points while routing new Orthanc instances into a folder, then started again; every instance must arrive exactly
once. Also: what the daemon's exit status says about dead-lettered events."""

from __future__ import annotations

import json
import random
import subprocess
from collections import Counter
from pathlib import Path

import pydicom
import pytest

from diana_orthanc.testdata import ct_bytes
from diana_orthanc.testing import orthanc_workdir
from tests.faults.helpers import DIANA, ENV, Node, kill9, wait_for

N = 30


@pytest.fixture(scope="module")
def pacs():
    from diana_orthanc.testing import new_credentials

    with orthanc_workdir("diana-faults-watch-") as workdir:
        user, password = new_credentials()
        node = Node(workdir, "pacs", "PACS", user, password).start()
        try:
            yield node
        finally:
            node.stop()


def sop_uids(folder: Path) -> Counter:
    return Counter(str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID)
                   for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def files_in(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


@pytest.mark.parametrize("seed_value", [11, 12, 13])
def test_watch_killed_with_sigkill_at_random_points_routes_every_instance_exactly_once(pacs, tmp_path, seed_value):
    rng = random.Random(seed_value)
    pacs.reset()
    last = pacs.get("changes?last")["Last"]
    with pacs.session() as sess:
        sent = set()
        for i in range(N):
            data = ct_bytes(i % 10, study=0, series=i // 10, patient=seed_value, run=f"watch-kill-{seed_value}")
            sent.add(sess.post(f"{pacs.url}/instances", data=data, timeout=30).json()["ID"])
    assert len(sent) == N
    out = tmp_path / "archive"
    services = tmp_path / "services.json"
    services.write_text(json.dumps({
        "pacs": pacs.desc(ctype="ObservableOrthanc", polling_interval=0.05, start_from_change=last,
                          persist_file=str(tmp_path / "cursor.json")),
        "archive": {"ctype": "DcmDir", "path": str(out)},
    }))
    cmd = [*DIANA, "-s", str(services), "watch", "-r", "put_item", "pacs", "archive", "--interval", "0.05",
           "--deadletter", str(tmp_path / "dead.jsonl")]  # put_item binds to INSTANCE_ADDED
    for round_ in range(2):  # kill twice, at random points, then let a last run finish
        before = files_in(out) if out.exists() else 0
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        target = before + rng.randint(1, (N - before) // 2)
        wait_for(lambda: proc.poll() is not None or (out.exists() and files_in(out) >= target),
                 what=f"{target} files routed")
        kill9(proc)
        assert files_in(out) < N, "the daemon finished before the kill: the fault was not injected"
    final = subprocess.Popen([*cmd, "--max-seconds", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=ENV)
    try:
        wait_for(lambda: files_in(out) >= N or final.poll() is not None, what="every instance routed")
    finally:
        kill9(final)
    uids = sop_uids(out)
    assert len(uids) == N and max(uids.values()) == 1, f"{len(uids)} of {N} instances routed"
    assert not (tmp_path / "dead.jsonl").exists()


def test_watch_exit_status_says_events_were_dead_lettered(pacs, tmp_path):
    pacs.reset()
    last = pacs.get("changes?last")["Last"]
    with pacs.session() as sess:
        sess.post(f"{pacs.url}/instances", data=ct_bytes(0, run="watch-exit"), timeout=30).raise_for_status()
    services = tmp_path / "services.json"
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the archive folder should be: every put fails (permanent error)")
    services.write_text(json.dumps({
        "pacs": pacs.desc(ctype="ObservableOrthanc", polling_interval=0.05, start_from_change=last),
        "archive": {"ctype": "DcmDir", "path": str(blocker / "sub")},
    }))
    letters = tmp_path / "dead.jsonl"
    result = subprocess.run([*DIANA, "-s", str(services), "watch", "-r", "put_item", "pacs", "archive",
                             "--interval", "0.05", "--deadletter", str(letters), "--max-seconds", "3"],
                            capture_output=True, text=True, timeout=60, env=ENV)
    assert result.returncode == 3, result.stderr[-2000:]
    records = [json.loads(line) for line in letters.read_text().splitlines()]
    assert len(records) == 1 and records[0]["attempts"] == 1  # not transient: not retried 4 times
    replay = subprocess.run([*DIANA, "-s", str(services), "watch", "--replay", str(letters), "-r", "put_item",
                             "pacs", "archive"], capture_output=True, text=True, timeout=60, env=ENV)
    assert replay.returncode == 3 and "failed again 1" in replay.stdout, replay.stdout + replay.stderr[-1000:]
