"""Routing rules on a watched folder, through a kill -9: files stream into the folder while ``diana watch -R`` (a
subprocess) routes CT to two folders and MR to a third; the daemon is killed mid-stream and restarted, and every
destination ends up with exactly the SOP UIDs its rules name (none lost, none twice), as ``diana routes test`` says."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from diana_core.testing.waiting import wait_for

CORPUS = Path(pydicom.__file__).parent / "data" / "test_files"
DIANA = [sys.executable, "-m", "diana_core"]

ROUTES = """
routes:
  - name: ct
    source: inbox
    when: {Modality: CT, SeriesNumber: {">=": 2}}
    dest: [ct_a, ct_b]
  - name: mr
    source: inbox
    when: {Modality: "~^MR$"}
    dest: mr
  - name: rest
    source: inbox
    otherwise: true
"""


def make_set(folder: Path, n: int) -> list[Path]:
    """n files, each a new instance: 2/3 CT (1 in 6 of all in series 1), 1/3 MR."""
    folder.mkdir()
    ct, mr = pydicom.dcmread(CORPUS / "CT_small.dcm"), pydicom.dcmread(CORPUS / "MR_small.dcm")
    studies = {"CT": generate_uid(), "MR": generate_uid()}
    out = []
    for i in range(n):
        ds = (ct, ct, mr)[i % 3]
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.StudyInstanceUID = studies[ds.Modality]
        ds.SeriesNumber = (1 if i % 6 == 0 else 2) if ds.Modality == "CT" else 3  # series 1 CT: not routed
        path = folder / f"f{i:03}.dcm"
        ds.save_as(path, enforce_file_format=True)
        out.append(path)
    return out


def drop(src: Path, inbox: Path) -> None:
    tmp = inbox / f".{src.name}.part"
    shutil.copy(src, tmp)
    os.replace(tmp, inbox / src.name)


def rows(ledger: Path) -> list[tuple[str, str, str]]:
    if not ledger.exists():
        return []
    try:
        with sqlite3.connect(ledger) as db:
            return list(db.execute("SELECT rule, dest, item FROM delivered"))
    except sqlite3.OperationalError:  # the daemon is creating it
        return []


def sops(folder: Path) -> list[str]:
    return [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in sorted(folder.rglob("*.dcm"))]


def test_a_kill_9_mid_stream_loses_and_duplicates_nothing_per_destination(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    services = {"inbox": {"ctype": "ObservableDcmDir", "path": str(inbox), "state_file": str(tmp_path / "mark")},
                **{name: {"ctype": "DcmDir", "path": str(tmp_path / name)} for name in ("ct_a", "ct_b", "mr")}}
    (tmp_path / "services.yml").write_text(json.dumps(services))
    (tmp_path / "routes.yml").write_text(ROUTES)
    files = make_set(tmp_path / "src", 91)
    probe = files.pop(1)  # a CT of series 2, dropped before the stream: proves the daemon watches

    tested = subprocess.run([*DIANA, "--json", "-s", tmp_path / "services.yml", "routes", "test",
                             tmp_path / "routes.yml", probe, *files], capture_output=True, text=True, timeout=120)
    assert tested.returncode == 0, tested.stderr
    takes = {Path(r["file"]).name: {x["rule"] for x in r["rules"]} for r in json.loads(tested.stdout)}
    sop_of = {p.name: str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in [probe, *files]}
    expected = {rule: {sop_of[f] for f, rules in takes.items() if rule in rules} for rule in ("ct", "mr", "rest")}
    assert (len(expected["ct"]), len(expected["mr"]), len(expected["rest"])) == (45, 30, 16)

    ledger = tmp_path / "ledger.sqlite"
    cmd = [*DIANA, "--json", "-s", tmp_path / "services.yml", "watch", "-R", tmp_path / "routes.yml",
           "--ledger", ledger, "--deadletter", tmp_path / "dead.jsonl", "--interval", "0.2"]
    first = subprocess.Popen([*cmd[:3], "-v", *cmd[3:]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen, deadline = "", time.monotonic() + 60
    while "watching its folder" not in seen:  # the daemon logs when the folder watch is live
        assert time.monotonic() < deadline and first.poll() is None, seen
        if select.select([first.stderr], [], [], 0.5)[0]:
            seen += first.stderr.readline()
    drop(probe, inbox)
    wait_for(lambda: rows(ledger), what="the probe routed")

    stream_done = threading.Event()

    def stream() -> None:
        for path in files:
            drop(path, inbox)
            time.sleep(0.01)
        stream_done.set()

    producer = threading.Thread(target=stream)
    producer.start()
    wait_for(lambda: len(rows(ledger)) >= 20, what="deliveries under way")
    os.kill(first.pid, signal.SIGKILL)  # mid-stream: files still arriving, deliveries in flight
    first.wait(timeout=30)
    at_kill = len(rows(ledger))
    producer.join(timeout=60)
    assert stream_done.is_set()
    total = 2 * len(expected["ct"]) + len(expected["mr"])
    assert at_kill < total, "the kill came after the stream was routed: not a mid-stream kill"

    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(rows(ledger)) >= total, timeout=90, what="every delivery after the restart")
    finally:
        second.send_signal(signal.SIGTERM)
        out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err[-2000:]

    for dest, rule in (("ct_a", "ct"), ("ct_b", "ct"), ("mr", "mr")):
        got = sops(tmp_path / dest)
        assert len(got) == len(set(got)), f"{dest} holds an instance twice"
        assert set(got) == expected[rule], f"{dest}: {len(set(got))} of {len(expected[rule])}"
    ledger_rows = rows(ledger)
    assert Counter((r, d) for r, d, _ in ledger_rows) == {("ct", "ct_a"): 45, ("ct", "ct_b"): 45, ("mr", "mr"): 30}
    summary = json.loads(out.strip().splitlines()[-1])
    assert {r["route"]: r["dead"] for r in summary["routes"]} == {"ct": 0, "mr": 0, "rest": 0}


def test_stable_orthanc_studies_and_series_are_routed_once_by_their_conditions(tmp_path, clean_orthancs):
    """Orthanc's StableStudy/StableSeries through the same rules: a CT study routed whole once, MR series each once
    into their own folder, nothing else delivered, the rest counted as unrouted."""
    from diana_core import load_services
    from diana_core.usecases.ledger import DeliveryLedger
    from diana_core.usecases.routing import Router
    from diana_core.usecases.rules import RuleSet
    from diana_core.usecases.watcher import Watcher

    services = load_services({
        "pacs": clean_orthancs.local.service_desc(ctype="ObservableOrthanc", polling_interval=0.1),
        **{name: {"ctype": "DcmDir", "path": str(tmp_path / name)} for name in ("ct", "mr")}})
    router = Router(RuleSet.compile([
        {"name": "ct-studies", "source": "pacs", "on": "stable-study", "when": {"Modality": "CT"}, "dest": "ct"},
        {"name": "mr-series", "source": "pacs", "on": "stable-series", "when": {"Modality": "MR"}, "dest": "mr"}]),
        ledger=DeliveryLedger(tmp_path / "ledger.sqlite"))
    watcher = Watcher(action_interval=0.1)
    for trigger in router.build(services):
        watcher.add_trigger(trigger)
    watcher.select, watcher.on_outcome = router.select, router.outcome
    watcher.poll_sources()  # the cursor starts now
    files = make_set(tmp_path / "src", 12)  # one CT study (8 files), one MR study (4 files); one series each
    assert services["pacs"].put_many(files, workers=2).done == 12
    ct_sops = {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in files
               if pydicom.dcmread(p, stop_before_pixels=True).Modality == "CT"}
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: len(rows(tmp_path / "ledger.sqlite")) >= 2, timeout=90, what="the stable study and series")
        wait_for(lambda: router.unrouted >= 2, timeout=30, what="the MR study, the CT series: unrouted")
    finally:
        watcher.stop()
        thread.join(timeout=15)
    assert set(sops(tmp_path / "ct")) == ct_sops and len(sops(tmp_path / "ct")) == 8
    assert len(sops(tmp_path / "mr")) == 4
    assert Counter((r, d) for r, d, _ in rows(tmp_path / "ledger.sqlite")) == {("ct-studies", "ct"): 1,
                                                                               ("mr-series", "mr"): 1}
    assert router.unrouted == 2 and router.counts["ct-studies"].matched == router.counts["mr-series"].matched == 1
