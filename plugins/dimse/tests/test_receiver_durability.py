"""The receiver's delivery contract against real senders: dcmtk's storescu (3 at once) sends into `diana watch`'s
DicomReceiver, the daemon is killed with SIGKILL mid-stream and started again; every instance a sender was told
"success" for must reach the destination (modalities never resend what was answered success). Also: SOP Instance
UIDs that are not valid UIDs ("." and "..") get distinct files."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from diana_core.testing.waiting import wait_for
from diana_dimse import DicomReceiver
from diana_dimse.testing import DCMTK_ENV, free_port, wait_port, write_studies

DIANA = [sys.executable, "-c", "from diana_core.cli import main; main()"]


def sop_uids(folder: Path) -> list[str]:
    return [str(pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
            for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]


def told_success(log: str) -> set[str]:
    """Files storescu sent and heard "Success" for (its -v log: 'Sending file: F' ... 'Store Response (Success)')."""
    ok, current = set(), None
    for line in log.splitlines():
        sent = re.search(r"Sending file: (.+)$", line)
        if sent:
            current = sent.group(1).strip()
        elif "Received Store Response (Success)" in line and current:
            ok.add(current)
            current = None
    return ok


@pytest.mark.parametrize("engine", ["pynetdicom", "dcmtk"])
def test_sigkill_mid_stream_then_restart_routes_every_instance_answered_success(tmp_path, engine):
    """With either engine (dcmtk: storescp dies with the daemon; the restart adopts what its log shows finished)."""
    per_sender = 60
    folders = []
    for n in range(3):
        # 128x128 images: a stream long enough for the kill to land in it, even into the fast dcmtk engine
        write_studies(tmp_path / f"src{n}", studies=1, series=2, per_series=per_sender // 2, size=128,
                      run=f"durable-{n}")
        folders.append(tmp_path / f"src{n}")
    port = free_port()
    out = tmp_path / "archive"
    services = tmp_path / "services.json"
    services.write_text(json.dumps({
        "dicom-in": {"ctype": "DicomReceiver", "path": str(tmp_path / "in"), "port": port, "aet": "DIANA",
                     "engine": engine},
        "archive": {"ctype": "DcmDir", "path": str(out)},
    }))
    cmd = [*DIANA, "-s", str(services), "watch", "-r", "put_item", "dicom-in", "archive", "--interval", "0.05",
           "--deadletter", str(tmp_path / "dead.jsonl")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    senders = []
    try:
        wait_port(port, proc, timeout=60)
        for n, folder in enumerate(folders):
            senders.append(subprocess.Popen(
                ["/usr/bin/storescu", "-v", "-aet", f"MOD{n}", "-aec", "DIANA", "+sd", "+r", "127.0.0.1", str(port),
                 str(folder)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env={**os.environ, **DCMTK_ENV}))
        received = tmp_path / "in"
        wait_for(lambda: sum(1 for p in received.rglob("*.dcm") if not p.name.startswith(".")) >= per_sender,
                 what="a third of the instances received")
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # mid-association: the senders are still sending
        proc.wait()
    logs = [s.communicate(timeout=60)[0] for s in senders]
    success = set().union(*(told_success(log) for log in logs))
    expected = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in success}
    routed_before = set(sop_uids(out)) if out.exists() else set()
    assert 0 < len(expected) < 3 * per_sender, "the kill did not land mid-stream"
    assert expected - routed_before, "nothing was waiting to be routed at the kill: the fault was not injected"

    restarted = subprocess.Popen([*cmd, "--max-seconds", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
    try:
        wait_for(lambda: expected <= set(sop_uids(out)) or restarted.poll() is not None,
                 what="every instance answered success routed")
    finally:
        restarted.send_signal(signal.SIGTERM)
        _, err = restarted.communicate(timeout=30)
    routed = sop_uids(out)
    assert expected <= set(routed), \
        f"{len(expected - set(routed))} of {len(expected)} acknowledged instances lost; the restart said: {err[-800:]}"
    assert re.search(r"catching up: dicom-in: [1-9][0-9]* received instance\(s\) not yet routed", err), err[-500:]
    pending = [p for p in (tmp_path / "in").rglob("*.pending")]
    assert not pending or all(p.parent.exists() for p in pending)  # only instances waiting for STUDY_STABLE


def test_uids_dot_and_dotdot_land_in_distinct_files(tmp_path):
    from diana_dimse import DicomNode

    base = pydicom.dcmread(write_studies(tmp_path / "src", studies=1, series=1, per_series=1)[0])
    files = []
    for n, uid in enumerate((".", "..")):
        base.SOPInstanceUID = uid
        base.file_meta.MediaStorageSOPInstanceUID = uid
        path = tmp_path / f"odd{n}.dcm"
        base.save_as(path, enforce_file_format=True)
        files.append(str(path))
    receiver = DicomReceiver(name="odd", path=str(tmp_path / "in"), port=free_port(), stable_age=0.2).start()
    try:
        node = DicomNode(name="odd", host="127.0.0.1", port=receiver.port, aet="DIANA")
        assert node.put_many(files).done == 2
        events = wait_for(lambda: receiver.changes() or None, what="events")
    finally:
        receiver.stop()
    stored = [p for p in (tmp_path / "in").rglob("*.dcm") if not p.name.startswith(".")]
    assert len(stored) == 2 and len({p.name for p in stored}) == 2
    assert sorted(str(pydicom.dcmread(p).SOPInstanceUID) for p in stored) == [".", ".."]
    assert len({e.data.fn for e in events}) == 2


def test_marks_stay_until_the_instance_and_its_stable_study_are_acknowledged_and_replay_after_a_restart(tmp_path):
    from diana_core import EventType
    from diana_dimse import DicomNode

    files = [str(f) for f in write_studies(tmp_path / "src", studies=1, series=1, per_series=3)]
    first = DicomReceiver(name="in", path=str(tmp_path / "in"), port=free_port(), stable_age=0.2).start()
    try:
        assert DicomNode(name="in", host="127.0.0.1", port=first.port, aet="DIANA").put_many(files).done == 3
        events = []
        wait_for(lambda: events.extend(first.changes()) or
                 any(e.event_type == EventType.STUDY_STABLE for e in events), what="a stable study")
        for event in events:
            if event.event_type == EventType.INSTANCE_ADDED:
                first.ack(event)  # routed; the study-level route (STUDY_STABLE) has not run yet
    finally:
        first.stop()
    assert len(list((tmp_path / "in").rglob(".*.pending"))) == 3  # a kill now must not lose the study route

    second = DicomReceiver(name="in", path=str(tmp_path / "in"), port=free_port(), stable_age=0.2)
    try:
        assert second.resume_summary() == "3 received instance(s) not yet routed"
        again = []
        wait_for(lambda: again.extend(second.changes()) or
                 any(e.event_type == EventType.STUDY_STABLE for e in again), what="the study stable again")
        assert sorted(e.data.fn for e in again if e.event_type == EventType.INSTANCE_ADDED) == \
            sorted(e.data.fn for e in events if e.event_type == EventType.INSTANCE_ADDED)
        [stable] = [e for e in again if e.event_type == EventType.STUDY_STABLE]
        assert stable.data.meta["Instances"] == 3
        second.ack(stable)
        assert len(list((tmp_path / "in").rglob(".*.pending"))) == 3  # instances not acknowledged yet
        for event in again:
            second.ack(event)
    finally:
        second.stop()
    assert not list((tmp_path / "in").rglob(".*.pending"))
