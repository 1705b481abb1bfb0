"""The C-STORE engine choice (dcmtk's dcmsend/storescp or pynetdicom) and the dcmtk sender's per-instance
statuses against a real Store SCP that refuses some instances (counted by SOP Instance UID at the SCP)."""

from __future__ import annotations

import os

import pydicom
import pytest

from diana_core.errors import ConfigError, EndpointUnavailable
from diana_dimse import DicomNode, DicomReceiver
from diana_dimse.dcmsend import parse_report
from diana_dimse.errors import DimseStatusError
from diana_dimse.scp import StoreServer
from diana_dimse.testing import free_port, wait_port, write_studies


def test_the_sender_defaults_to_dcmtk_when_found_and_falls_back_to_pynetdicom(tmp_path, monkeypatch):
    assert DicomNode(name="pacs").engine == "dcmtk"
    assert DicomNode(name="pacs", tls=True).engine == "pynetdicom"  # dcmsend has no TLS
    assert DicomReceiver(name="in", path=str(tmp_path)).engine == "pynetdicom"  # the full guarantee by default
    assert DicomReceiver(name="in", path=str(tmp_path), engine="DCMTK").engine == "dcmtk"
    fake = tmp_path / "venv-bin"
    fake.mkdir()
    (fake / "dcmsend").write_text("#!/bin/sh\nexit 0\n")
    (fake / "dcmsend").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}:{os.environ['PATH']}")  # a venv's scripts first on PATH: never used
    monkeypatch.setenv("DIANA_DCMTK_DIR", str(tmp_path / "empty"))  # where dcmtk is looked up: not there
    assert DicomNode(name="pacs").engine == "pynetdicom"
    with pytest.raises(ConfigError, match=r"service 'pacs': engine dcmtk needs dcmsend"):
        DicomNode(name="pacs", engine="dcmtk")


def test_unknown_engines_and_unsupported_options_are_config_errors_naming_the_service(tmp_path):
    with pytest.raises(ConfigError, match=r"service 'pacs': engine must be one of dcmtk, pynetdicom, not 'dcmtj'"):
        DicomNode(name="pacs", engine="dcmtj")
    with pytest.raises(ConfigError, match=r"service 'in': engine must be one of dcmtk, pynetdicom"):
        DicomReceiver(name="in", path=str(tmp_path), engine="fast")
    with pytest.raises(ConfigError, match=r"service 'in': engine dcmtk does not support allowed_calling_aets"):
        DicomReceiver(name="in", path=str(tmp_path), engine="dcmtk", allowed_calling_aets=["CT1"])
    with pytest.raises(ConfigError, match=r"service 'pacs': engine dcmtk does not send over TLS"):
        DicomNode(name="pacs", engine="dcmtk", tls=True)


def test_dcmsend_failures_are_reported_per_instance_and_never_counted_delivered(tmp_path):
    files = write_studies(tmp_path / "src", studies=1, series=2, per_series=3)
    uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
    series = [str(pydicom.dcmread(f, stop_before_pixels=True).SeriesInstanceUID) for f in files]
    refused_series = series[0]
    arrived: list[str] = []

    def refuse_one_series(sop_uid: str, keys: dict, data: bytes) -> None:
        if keys.get("SeriesInstanceUID") == refused_series:
            raise ValueError("this SCP refuses the series")  # answered 0xC000 per instance
        arrived.append(sop_uid)

    (tmp_path / "notes.txt").write_text("not dicom")
    server = StoreServer("PICKY", free_port(), refuse_one_series).start()
    try:
        node = DicomNode(name="picky", host="127.0.0.1", port=server.port, aet="PICKY")
        assert node.engine == "dcmtk"
        result = node.put_many([*map(str, files), str(tmp_path / "notes.txt")])
        with pytest.raises(DimseStatusError, match=r"failed with status 0xC000") as info:
            node.put(str(files[series.index(refused_series)]))
        assert info.value.status == 0xC000
        assert node.put(str(files[-1])) == uids[-1]  # the other series is taken
    finally:
        server.stop()
    expected = [u for u, s in zip(uids, series, strict=True) if s != refused_series]
    assert result.done == len(expected) == 3
    assert sorted(arrived) == sorted([*expected, uids[-1]])  # what the SCP stored: exactly the ones counted done
    failed = dict(result.failed)
    assert len(failed) == 4 and "notes.txt is not readable DICOM" in failed["notes.txt"]
    assert all("0xC000" in why for label, why in failed.items() if label != "notes.txt")


def test_an_unreachable_node_fails_every_instance_with_a_typed_error(tmp_path):
    files = write_studies(tmp_path / "src", studies=1, series=1, per_series=2)
    node = DicomNode(name="gone", host="127.0.0.1", port=free_port(), aet="GONE", timeout=3)
    result = node.put_many(list(map(str, files)))
    assert result.done == 0 and len(result.failed) == 2 and "cannot send to 127.0.0.1" in result.failed[0][1]
    with pytest.raises(EndpointUnavailable, match="Connection refused"):
        node.put(str(files[0]))


def test_the_report_parser_reads_each_status_and_not_sent():
    report = ("Number        : 1\nFilename      : /a.dcm\nSOP Instance  : 1.2.3\nDIMSE Status  : 0x0000 (Success)\n\n"
              "Number        : 2\nFilename      : /b.dcm\nSOP Instance  : 1.2.4\nDIMSE Status  : 0xb000 (Warning)\n\n"
              "Number        : 3\nFilename      : /c.dcm\nSOP Instance  : 1.2.5\nDIMSE Status  : <not sent>\n")
    assert parse_report(report) == {"/a.dcm": ("1.2.3", 0x0000, "Success"), "/b.dcm": ("1.2.4", 0xB000, "Warning"),
                                    "/c.dcm": ("1.2.5", None, "<not sent>")}


@pytest.mark.parametrize("cut", [0, 1000])
def test_a_restart_takes_in_what_storescps_log_shows_finished_and_removes_the_rest(tmp_path, cut):
    """The log of a storescp killed with the daemon: A finished (a line follows it), B was the last file it stored
    (taken in only when it reads whole: cut = bytes missing), C never reached the log (never answered: removed)."""
    from diana_dimse.storescp import LOG_NAME, DcmtkStoreServer

    incoming = tmp_path / ".incoming"
    incoming.mkdir()
    src = write_studies(tmp_path / "src", studies=1, series=1, per_series=3, size=64)
    names = []
    for n, f in enumerate(src):
        uid = str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        data = f.read_bytes()
        (incoming / f"CT.{uid}.dcm").write_bytes(data[:len(data) - cut] if n == 1 else data)
        names.append(f"CT.{uid}.dcm")
    (incoming / LOG_NAME).write_text(
        "Association Received: 10.0.0.7\nCalling Application Name:    CT1\nCalled Application Name:     DIANA\n"
        "Association Acknowledged (Max Send PDV: 16372)\nReceived Store Request\n"
        f"storing DICOM file: {incoming / names[0]}\nReceived Store Request\n"
        f"storing DICOM file: {incoming / names[1]}\n")
    taken: list[tuple[str, dict]] = []

    def on_files(batch: list) -> int:
        for _, path, facts in batch:
            taken.append((path.name, facts))
            path.rename(tmp_path / path.name)
        return len(batch)

    server = DcmtkStoreServer("DIANA", 0, incoming, on_files)
    server._catch_up()
    facts = {"PeerAddress": "10.0.0.7", "CallingAET": "CT1", "CalledAET": "DIANA"}
    assert taken == ([(names[0], facts), (names[1], facts)] if cut == 0 else [(names[0], facts)])
    assert server.caught_up == len(taken)
    assert not [p for p in incoming.iterdir() if not p.name.startswith(".")]  # C (and a cut B) removed
    assert not (incoming / LOG_NAME).exists()


def test_storescp_killed_mid_stream_is_started_again_and_every_instance_answered_success_arrives(tmp_path):
    """kill -9 of the receiver's storescp alone (a crash): what it answered success for is taken in, it is started
    again on the same port, and the sender resending only what was not answered success gets everything in."""
    import re
    import signal
    import subprocess
    import time

    from diana_dimse.testing import DCMTK_ENV

    files = write_studies(tmp_path / "src", studies=1, series=1, per_series=150, size=256)
    sops = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID): f for f in files}
    receiver = DicomReceiver(name="in", path=str(tmp_path / "in"), port=free_port(), engine="dcmtk",
                             stable_age=0.2).start()
    events: list = []
    try:
        first_pid = receiver._server._proc.pid
        sender = subprocess.Popen(["/usr/bin/storescu", "-v", "-aec", "DIANA", "127.0.0.1", str(receiver.port),
                                   *map(str, files)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, **DCMTK_ENV})
        deadline = time.monotonic() + 60
        lines, answered = [], 0
        assert sender.stdout is not None
        for line in sender.stdout:  # storescu's progress, read as it sends
            lines.append(line)
            answered += "Store Response (Success)" in line
            if answered == 20 and "Store Response (Success)" in line:
                os.kill(first_pid, signal.SIGKILL)
        sender.wait(60)
        told, current = set(), None
        for line in lines:
            if m := re.search(r"Sending file: (.+)$", line):
                current = m.group(1).strip()
            elif "Received Store Response (Success)" in line and current:
                told.add(str(pydicom.dcmread(current, stop_before_pixels=True).SOPInstanceUID))
        assert 20 <= len(told) < len(files), "the kill did not land mid-stream"
        while (receiver._server._proc is None or receiver._server._proc.pid == first_pid) and \
                time.monotonic() < deadline:
            time.sleep(0.05)  # waiting for the restart
        wait_port(receiver.port)
        resend = [str(f) for sop, f in sops.items() if sop not in told]  # a modality resends what failed only
        again = subprocess.run(["/usr/bin/storescu", "-aec", "DIANA", "127.0.0.1", str(receiver.port), *resend],
                               capture_output=True, text=True, timeout=60, env={**os.environ, **DCMTK_ENV})
        assert again.returncode == 0, again.stderr[-500:]
        while len({e.data.tag("SOPInstanceUID") for e in events if e.data.tag("SOPInstanceUID")}) < len(files) \
                and time.monotonic() < deadline:
            events.extend(receiver.changes())
            time.sleep(0.05)  # polling for events
    finally:
        receiver.stop()
    arrived = {e.data.tag("SOPInstanceUID") for e in events if e.event_type == "instance_added"}
    assert told <= arrived and arrived == set(sops)  # counted by SOP UID: the answered ones came from the first run
    stored = {p.name.removesuffix(".dcm") for p in (tmp_path / "in").rglob("*.dcm") if ".incoming" not in p.parts}
    assert stored == set(sops)


def test_a_receiver_started_from_a_thread_that_ends_keeps_its_storescp(tmp_path):
    """storescp dies with the thread that forked it (parent-death signal): the server forks it from its own thread."""
    import threading
    import time

    from diana_dimse.testing import storescu

    files = write_studies(tmp_path / "src", studies=1, series=1, per_series=3)
    receiver = DicomReceiver(name="in", path=str(tmp_path / "in"), port=free_port(), engine="dcmtk")
    starter = threading.Thread(target=receiver.start)
    starter.start()
    starter.join()
    try:
        pid = receiver._server._proc.pid
        time.sleep(1.5)  # long enough for a parent-death signal to have killed it and a restart to have happened
        storescu(receiver.port, [tmp_path / "src"], aec="DIANA")
        deadline = time.monotonic() + 30
        while receiver.received < 3 and time.monotonic() < deadline:
            time.sleep(0.02)  # polling until the files are taken in
        assert receiver._server._proc.pid == pid  # the same storescp: never killed, never restarted
    finally:
        receiver.stop()
    stored = {p.name.removesuffix(".dcm") for p in (tmp_path / "in").rglob("*.dcm") if ".incoming" not in p.parts}
    assert stored == {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files}
