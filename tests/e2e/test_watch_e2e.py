"""End to end: the Watcher routes files dropped into a watched folder into a real Orthanc, and new Orthanc
instances into a folder; a failing item is retried, dead-lettered and replayed while the rest flows on; the CLI
daemon stops cleanly on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pydicom
import pytest

from diana_core import load_services
from diana_core.testing.waiting import wait_for
from diana_core.usecases.routes import mk_route
from diana_core.usecases.watcher import Watcher
from diana_orthanc.testdata import write_small_ct


def make_files(folder: Path, n: int, accession: str = "WATCH1") -> list[Path]:
    study = "1.2.826.0.1.3680043.8.498.99." + str(sum(map(ord, accession)))
    out = []
    for i in range(n):
        path = folder / f"{accession}-{i}.dcm"
        write_small_ct(path, accession, i + 1, patient_id="PW", patient_name="Watch^Pat", study_uid=study)
        out.append(path)
    return out


def drop(src: Path, inbox: Path, name: str | None = None) -> Path:
    """Copy under a hidden name, then rename into place (how DICOM receivers write)."""
    target = inbox / (name or src.name)
    tmp = inbox / f".{target.name}.part"
    shutil.copy(src, tmp)
    os.replace(tmp, target)
    return target


def instance_count(orthanc) -> int:
    return int(orthanc.statistics()["CountInstances"])


@pytest.fixture()
def running():
    """Start watchers in threads; stop and join them at the end."""
    started = []

    def start(watcher: Watcher) -> threading.Thread:
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        started.append((watcher, thread))
        return thread

    yield start
    for watcher, thread in started:
        watcher.stop()
        thread.join(timeout=15)
        assert not thread.is_alive()


def test_files_dropped_in_a_folder_go_to_orthanc_and_a_bad_one_is_dead_lettered_then_replayed(
        tmp_path, clean_orthancs, running):
    local = clean_orthancs.local
    inbox, letters = tmp_path / "inbox", tmp_path / "dead.jsonl"
    inbox.mkdir()
    services = load_services({
        "inbox": {"ctype": "ObservableDcmDir", "path": str(inbox), "settle_interval": 0.05, "polling_interval": 0.05},
        "pacs": local.service_desc(),
    })
    watcher = Watcher(action_interval=0.05, retry_delays=(0.05,), deadletter_path=str(letters))
    trigger = watcher.add_trigger(mk_route("upload_item", "inbox", "pacs", services=services))
    watcher.poll_sources()  # the folder watch starts here: files dropped from now on are announced
    running(watcher)

    files = make_files(tmp_path / "src", 5)
    drop(files[0], inbox)
    (tmp_path / "junk.dcm").write_bytes(b"not dicom" * 50)
    drop(tmp_path / "junk.dcm", inbox, "junk.dcm")
    for f in files[1:]:
        drop(f, inbox)
    pacs = services["pacs"]
    wait_for(lambda: instance_count(pacs) == 5 and watcher.stats.dead == 1, what="5 instances and 1 dead letter")
    assert (watcher.stats.handled, watcher.stats.failed, watcher.stats.retried) == (5, 1, 0)  # bad data: no retry
    [record] = [json.loads(line) for line in letters.read_text().splitlines()]
    assert record["handler"] == "upload_item" and record["trigger"] == trigger.name
    assert "InvalidDicom" in record["error"] and record["route"]["dest"] == "pacs"

    # the bad file is replaced by a good one: replaying the dead letter uploads it
    watcher.stop()
    replacement = make_files(tmp_path / "fix", 1, accession="WATCH2")[0]
    shutil.copy(replacement, inbox / "junk.dcm")
    result = watcher.replay(str(letters))
    assert (result.handled, result.failed) == (1, 0) and not letters.exists()
    assert instance_count(pacs) == 6


def test_new_orthanc_instances_are_saved_into_a_folder(tmp_path, clean_orthancs, running):
    local = clean_orthancs.local
    out = tmp_path / "archive"
    services = load_services({
        "pacs": local.service_desc(ctype="ObservableOrthanc", polling_interval=0.1),
        "archive": {"ctype": "DcmDir", "path": str(out)},
    })
    watcher = Watcher(action_interval=0.1)
    watcher.add_trigger(mk_route("put_item", "pacs", "archive", services=services))
    watcher.poll_sources()  # the change cursor starts here
    running(watcher)
    files = make_files(tmp_path / "src", 4, accession="ORTH1")
    upload = services["pacs"].put_many(files, workers=2)
    assert upload.done == 4
    saved = wait_for(lambda: (lambda s: s if len(s) == 4 else None)(sorted(out.rglob("*.dcm"))),
                     what="4 files in the folder")
    sent = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files}
    got = {pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in saved}
    assert got == sent and watcher.stats.failed == 0


def test_stable_orthanc_studies_are_saved_whole_into_a_pseudonymizing_folder(tmp_path, clean_orthancs, running):
    """The route archive users run: each study, once Orthanc calls it stable, lands pseudonymized in a folder."""
    local = clean_orthancs.local
    out = tmp_path / "research"
    services = load_services({
        "pacs": local.service_desc(ctype="ObservableOrthanc", polling_interval=0.1),
        "research": {"ctype": "DcmDir", "path": str(out), "anonymizing": True},
    })
    watcher = Watcher(action_interval=0.1)
    trigger = watcher.add_trigger(mk_route("put_item", "pacs", "research", services=services,
                                           event_type="study_stable"))
    watcher.poll_sources()
    running(watcher)
    files = make_files(tmp_path / "src", 3, accession="STABLE1")
    assert services["pacs"].put_many(files, workers=2).done == 3
    saved = wait_for(lambda: (lambda s: s if len(s) == 3 else None)(sorted(out.rglob("*.dcm"))),
                     what="the stable study's 3 files in the folder")
    assert trigger.event_type.value == "study_stable" and watcher.stats.failed == 0
    for path in saved:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.PatientIdentityRemoved == "YES" and ds.PatientID != "PW" and ds.AccessionNumber != "STABLE1"


@contextlib.contextmanager
def watch_daemon(args: list[str], cwd: Path | None = None):
    """Run `diana -v watch ARGS` until the folder watch is live; yields the process; always reaped."""
    diana = [sys.executable, "-c", "from diana_core.cli import main; main()"]
    proc = subprocess.Popen([*diana, "-v", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen, deadline = "", time.monotonic() + 30
        while "watching its folder" not in seen:  # the daemon logs when the folder watch is live
            assert time.monotonic() < deadline and proc.poll() is None, seen
            ready, _, _ = select.select([proc.stderr], [], [], 0.5)
            if ready:
                seen += proc.stderr.readline()
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_watch_routes_and_stops_cleanly_on_sigterm(tmp_path, clean_orthancs):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    services = tmp_path / "services.json"
    services.write_text(json.dumps({
        "inbox": {"ctype": "ObservableDcmDir", "path": str(inbox), "settle_interval": 0.05, "polling_interval": 0.05},
        "pacs": clean_orthancs.local.service_desc(),
    }))
    args = ["-s", str(services), "watch", "-r", "upload_item", "inbox", "pacs", "--interval", "0.05",
            "--deadletter", str(tmp_path / "dead.jsonl")]
    with watch_daemon(args) as proc:
        drop(make_files(tmp_path / "src", 1, accession="CLI1")[0], inbox)
        pacs = load_services(json.loads(services.read_text()))["pacs"]
        wait_for(lambda: instance_count(pacs) == 1, what="the dropped file in Orthanc")
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "stopped: seen 1, handled 1, failed 0" in stdout


def test_upload_item_with_anonymize_sends_only_the_pseudonymized_copy_to_orthanc(clean_orthancs, tmp_path):
    from diana_core.dicom import DicomLevel
    from diana_core.pseudonym import Pseudonymizer
    from diana_core.usecases.routes import upload_item
    from diana_dcmdir import DcmDir
    from diana_orthanc import Orthanc

    path = make_files(tmp_path / "src", 1, accession="ANON1")[0]
    source = DcmDir(path=str(tmp_path / "src"))
    dest = Orthanc(**{k: v for k, v in clean_orthancs.local.service_desc().items() if k != "ctype"})
    original = source.get(str(path))
    result = upload_item(str(path), source=source, dest=dest, anonymize=True)
    expected = Pseudonymizer().predicted_oid(original.tags, DicomLevel.INSTANCES)
    assert str(result) == expected  # pseudonymized locally: the original never reached Orthanc
    assert dest.gateway.inventory(DicomLevel.INSTANCES) == [expected]


def test_cli_watch_a_relative_folder_path_into_a_folder(tmp_path):
    """As the README shows it: `diana watch -r upload_item ./incoming DEST --anonymize`, a plain folder as source."""
    (tmp_path / "incoming").mkdir()
    args = ["watch", "-r", "upload_item", "./incoming", "./archive", "--anonymize", "--interval", "0.05",
            "--deadletter", "dead.jsonl"]
    with watch_daemon(args, cwd=tmp_path) as proc:
        drop(make_files(tmp_path / "src", 2, accession="REL1")[0], tmp_path / "incoming")
        saved = wait_for(lambda: list((tmp_path / "archive").rglob("*.dcm")) or None, what="the file in ./archive")
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=30)
    assert pydicom.dcmread(saved[0], stop_before_pixels=True).PatientIdentityRemoved == "YES"
    assert proc.returncode == 0 and "handled 1, failed 0" in stdout


def test_watching_a_source_that_cannot_be_observed_is_a_clear_error(tmp_path):
    from diana_core.errors import ConfigError
    from diana_core.usecases.routes import require_observable

    trigger = mk_route("put_item", {"ctype": "DcmDir", "path": str(tmp_path)}, {"ctype": "MemoryEndpoint"})
    with pytest.raises(ConfigError, match="cannot be watched"):
        require_observable(trigger)
    require_observable(mk_route("put_item", str(tmp_path), {"ctype": "MemoryEndpoint"}))  # a folder path is watchable


def test_new_studies_on_the_remote_pacs_are_pulled_and_saved_by_the_watcher(tmp_path, clean_orthancs):
    """ObservableProxiedDicom polls the remote PACS (C-FIND through the local Orthanc) for a recent window; each new
    study is C-MOVEd to the proxy and saved into a folder by the pull_and_save_item route."""
    from datetime import datetime

    import requests

    from diana_orthanc.testdata import ct_bytes

    remote = clean_orthancs.remote
    session = requests.Session()
    session.auth = (remote.user, remote.password)
    for i in range(3):  # a study dated 2020-01-02 10:15 (the synthetic CT's StudyDate/StudyTime)
        session.post(f"{remote.url}/instances", data=ct_bytes(i, run="pull-route")).raise_for_status()
    services = load_services({
        "hospital": {"ctype": "ObservableProxiedDicom", "proxy_desc": clean_orthancs.local.service_desc(),
                     "proxy_domain": "remote", "qperiod": 600},
        "archive": {"ctype": "DcmDir", "path": str(tmp_path / "archive")},
    })
    trigger = mk_route("pull_and_save_item", "hospital", "archive", services=services)
    observer = services["hospital"]
    events = observer.changes(now=datetime(2020, 1, 2, 10, 20))
    assert [e.event_type.value for e in events] == ["study_added"]
    assert observer.changes(now=datetime(2020, 1, 2, 10, 21)) == []  # the history suppresses a repeat
    watcher = Watcher()
    watcher.add_trigger(trigger)
    watcher.fire(events[0])
    watcher.tick()
    assert watcher.stats.handled == 1, watcher.stats
    assert len(list((tmp_path / "archive").rglob("*.dcm"))) == 3
