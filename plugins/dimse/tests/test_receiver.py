"""DicomReceiver: dcmtk's storescu sends into it (compared with dcmtk's storescp receiving the same files); events
INSTANCE_ADDED and STUDY_STABLE; and `diana watch` routes what arrives into a real Orthanc, pseudonymized."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
import time

import pydicom
import requests

from diana_core import EventType, load_services
from diana_core.testing.waiting import wait_for
from diana_dimse import DicomReceiver
from diana_dimse.testing import free_port, start_storescp, storescu, write_studies


def test_storescu_into_the_receiver_lands_like_storescp_and_emits_events(tmp_path):
    files = write_studies(tmp_path / "src", studies=1)
    receiver = load_services({"in": {"ctype": "DicomReceiver", "path": str(tmp_path / "in"), "aet": "DIANA",
                                     "port": free_port(), "stable_age": 0.5}})["in"]
    assert isinstance(receiver, DicomReceiver) and receiver.check()
    events: list = []
    try:
        events += receiver.changes()  # starts listening
        storescu(receiver.port, [tmp_path / "src"], aec="DIANA")
        wait_for(lambda: events.extend(receiver.changes()) or
                 any(e.event_type == EventType.STUDY_STABLE for e in events), what="a stable study")
    finally:
        receiver.stop()
    added = [e for e in events if e.event_type == EventType.INSTANCE_ADDED]
    [stable] = [e for e in events if e.event_type == EventType.STUDY_STABLE]
    assert len(added) == 6 and stable.data.meta["Instances"] == 6
    study_uid = str(pydicom.dcmread(files[0]).StudyInstanceUID)
    assert stable.data.tags["StudyInstanceUID"] == study_uid
    stored = sorted(p for p in (tmp_path / "in" / study_uid).iterdir() if not p.name.startswith("."))
    assert {e.data.fn for e in added} == {str(p) for p in stored}
    marks = sorted(p.name for p in (tmp_path / "in").rglob(".*"))  # no temp files: each write was atomic
    assert marks == sorted(f".{p.name}.pending" for p in stored)  # each instance waits for its route
    for event in events:
        receiver.ack(event)
    assert not [p for p in (tmp_path / "in").rglob(".*")]  # routed (instance and stable study): marks gone

    scp = start_storescp(tmp_path / "dcmtk")  # dcmtk's own receiver, same files
    try:
        storescu(scp.port, [tmp_path / "src"], aec="STORESCP")
    finally:
        scp.stop()

    def content(paths):
        out = {}
        for p in paths:
            ds = pydicom.dcmread(p)
            out[str(ds.SOPInstanceUID)] = (ds.PatientID, ds.PixelData, str(ds.file_meta.TransferSyntaxUID))
        return out

    assert content(stored) == content((tmp_path / "dcmtk").iterdir()) == content(files)
    got = receiver.get(added[0].data, view="tags,file")
    assert got.file == (tmp_path / "in" / study_uid / f"{got.tags['SOPInstanceUID']}.dcm").read_bytes()


def test_receiver_port_in_use_is_a_one_line_error(tmp_path):
    first = DicomReceiver(name="a", path=str(tmp_path / "a"), port=free_port()).start()
    try:
        second = DicomReceiver(name="b", path=str(tmp_path / "b"), port=first.port)
        assert second.check() is False
        try:
            second.start()
            raise AssertionError("a second listener on the same port")
        except Exception as exc:  # noqa: BLE001
            assert type(exc).__name__ == "EndpointUnavailable" and "\n" not in str(exc) and str(first.port) in str(exc)
    finally:
        first.stop()


def test_diana_watch_routes_what_a_modality_sends_into_orthanc_pseudonymized(clean_orthancs, tmp_path, monkeypatch):
    monkeypatch.setenv("DIANA_PSEUDONYM_KEY", "dimse-test-key")
    files = write_studies(tmp_path / "src", studies=1, series=1)
    port = free_port()
    local = clean_orthancs.local
    services = tmp_path / "services.json"
    services.write_text(json.dumps({
        "dicom-in": {"ctype": "DicomReceiver", "path": str(tmp_path / "in"), "port": port, "aet": "DIANA"},
        "research": local.service_desc(),
    }))
    diana = [sys.executable, "-c", "from diana_core.cli import main; main()"]
    proc = subprocess.Popen([*diana, "-s", str(services), "watch", "-r", "upload_item", "dicom-in", "research",
                             "--anonymize", "--interval", "0.05", "--deadletter", str(tmp_path / "dead.jsonl")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**__import__("os").environ, "DIANA_PSEUDONYM_KEY": "dimse-test-key"})
    try:
        deadline = time.monotonic() + 60
        while True:  # the receiver listens once the watcher polled it
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.poll() else ""
            try:
                storescu(port, [tmp_path / "src"], aec="DIANA")
                break
            except Exception:  # noqa: BLE001 - not listening yet
                select.select([], [], [], 0.1)
        session = requests.Session()
        session.auth = (local.user, local.password)
        wait_for(lambda: len(session.get(f"{local.url}/instances").json()) == len(files), what="3 instances")
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and "handled 3, failed 0" in stdout
    for oid in session.get(f"{local.url}/instances").json():
        tags = session.get(f"{local.url}/instances/{oid}/simplified-tags").json()
        assert tags["PatientID"] != "PT000000" and "PATIENT000" not in tags["PatientName"]
        assert tags["AccessionNumber"] != "ACC00000000"


def test_tls_between_node_receiver_and_dcmtk(tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", tmp_path / "key.pem",
                    "-out", tmp_path / "cert.pem", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
    files = write_studies(tmp_path / "src", studies=1, series=1)
    receiver = DicomReceiver(name="tls-in", path=str(tmp_path / "in"), port=free_port(),
                             tls_cert_file=str(tmp_path / "cert.pem"), tls_key_file=str(tmp_path / "key.pem")).start()
    try:
        from diana_dimse import DicomNode
        from diana_dimse.testing import run_dcmtk

        node = DicomNode(name="tls", host="127.0.0.1", port=receiver.port, aet="DIANA", tls=True,
                         tls_ca_file=str(tmp_path / "cert.pem"))
        assert node.check() and node.put_many([str(f) for f in files[:2]]).done == 2
        untrusted = DicomNode(name="untrusted", host="127.0.0.1", port=receiver.port, aet="DIANA", tls=True,
                              timeout=5)  # the system CAs do not know our self-signed certificate
        try:
            list(untrusted.find({}))
            raise AssertionError("an unverified TLS peer was accepted")
        except Exception as exc:  # noqa: BLE001
            assert type(exc).__name__ == "EndpointUnavailable" and "TLS handshake" in str(exc)
        assert DicomNode(name="plain", host="127.0.0.1", port=receiver.port, aet="DIANA", timeout=5).check() is False
        run_dcmtk("storescu", "+tls", tmp_path / "key.pem", tmp_path / "cert.pem", "+cf", tmp_path / "cert.pem",
                  "-aec", "DIANA", "127.0.0.1", receiver.port, files[2])  # dcmtk over TLS too
    finally:
        receiver.stop()
    assert sorted(p.name for p in (tmp_path / "in").rglob("*.dcm")) == \
        sorted(f"{pydicom.dcmread(f).SOPInstanceUID}.dcm" for f in files)
