"""The conformance kit (diana_core.testing.conformance) against a real DicomReceiver: the contract with dcmtk's
/usr/bin/storescu as the sender that stores into it, the DIMSE fault battery with a DicomNode sending to it through
the kit's proxy, and the receiver's own side of those faults (a sender aborting mid-transfer, a silent sender,
a wrong called AE title): no partial file, no event, the listener keeps serving."""

from __future__ import annotations

import io
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from diana_core import Dixel, EventType
from diana_core.errors import DianaError
from diana_core.testing.conformance import DIMSE_BATTERY, EndpointContract, EndpointFaults, FaultProxy
from diana_dimse import DicomNode, DicomReceiver
from diana_dimse.testdata import ct_dixels, ct_instance

STORESCU = "/usr/bin/storescu"  # dcmtk's, by absolute path: pynetdicom installs a script of that name in the venv
AET = "CONFRECV"


def storescu(port: int, path: Path, aec: str = AET, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([STORESCU, "-aet", "CONFSEND", "-aec", aec, *extra, "127.0.0.1", str(port), str(path)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def held(receiver: DicomReceiver) -> list[str]:
    """Every file under the receiver's folder, temporary ones included (pending marks and the dcmtk engine's
    storescp log, configuration and error output aside)."""
    return sorted(p.name for p in Path(receiver.path).rglob("*") if p.is_file() and not p.name.endswith(".pending")
                  and not p.name.startswith(".storescp"))


def added(receiver: DicomReceiver) -> list[str]:
    return [e.data.tag("SOPInstanceUID") for e in receiver.changes() if e.event_type == EventType.INSTANCE_ADDED]


@pytest.fixture
def items() -> list[Dixel]:
    """Three instances of one study, 64x64 pixels: more than one 4 KiB PDU, so an abort can cut one in half."""
    return ct_dixels(size=64)


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[DicomReceiver]:
    receiver = DicomReceiver(name="conformance-receiver", path=str(tmp_path / "in"), aet=AET, port=0, max_pdu=4096,
                             timeout=5, stable_age=0).start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def upstream(endpoint: DicomReceiver) -> tuple[str, int]:
    return "127.0.0.1", endpoint.port


@pytest.fixture
def endpoint_at() -> Callable[[str, int], DicomNode]:
    def build(host: str, port: int) -> DicomNode:
        return DicomNode(name="conformance-sender", host=host, port=port, aet=AET, timeout=1)
    return build


class TestDicomReceiverContract(EndpointContract):
    levels = ("studies", "instances")  # files are kept per study folder; a series is not a folder
    not_applicable = {
        "put_then_find": "a receiver answers C-STORE (and C-ECHO) only: it has no find(); get/exists by UIDs apply",
        "unknown_keyword_find": "no find() (see put_then_find)",
        "unknown_keyword_put": "nothing calls put() on a receiver: senders store into it over C-STORE (storescu)",
        "study_exists_means_complete": "a receiver cannot know how many instances a study should have; it says a "
                                       "study is complete by STUDY_STABLE after stable_age seconds of quiet",
    }

    def store(self, endpoint: Any, item: Dixel) -> Any:
        """dcmtk's storescu sends the item; success means the file is durable (the delivery contract)."""
        path = Path(endpoint.path).parent / f"send-{uuid.uuid4().hex}.dcm"
        assert item.file is not None
        path.write_bytes(item.file)
        proc = storescu(endpoint.port, path)
        path.unlink()
        assert proc.returncode == 0, f"storescu into the receiver failed: {proc.stderr[-400:]}"
        return item.tag("SOPInstanceUID")

    def found(self, endpoint: Any, item: Dixel, level: str = "instances") -> list[Any]:
        """No find(): the instances the receiver holds are its files (named by SOP Instance UID, per study)."""
        wanted = item.tag("SOPInstanceUID")
        return [p.stem for p in Path(endpoint.path).rglob("*.dcm") if p.stem == wanted]


class TestDicomReceiverFaults(EndpointFaults):
    """A DicomNode (Diana's sender) stores into the receiver through the proxy; the sender's error is typed and
    names it, and the receiver keeps nothing of a transfer that did not complete."""

    faults = DIMSE_BATTERY
    faults_not_applicable = "the DICOM upper layer, not HTTP: no status codes, login pages or bodies"
    operations = ("write",)
    operations_not_applicable = "a receiver answers C-STORE (and C-ECHO) only: there is no read to fault"
    check_not_stored = True

    def stored(self, endpoint: Any, item: Dixel) -> bool:
        leftovers, events = held(endpoint), added(endpoint)
        assert not events, f"the receiver announced {events} although no transfer completed"
        return bool(leftovers) or bool(super().stored(endpoint, item))


class _DcmtkEngine:
    """The receiver under test with ``engine: dcmtk`` (storescp answers; Diana takes each file in a moment later)."""

    row = "DicomReceiver (engine dcmtk)"

    @pytest.fixture
    def endpoint(self, tmp_path: Path) -> Iterator[DicomReceiver]:
        receiver = DicomReceiver(name="conformance-receiver", path=str(tmp_path / "in"), aet=AET, port=0,
                                 max_pdu=4096, timeout=5, stable_age=0, engine="dcmtk").start()
        try:
            yield receiver
        finally:
            receiver.stop()


class TestDicomReceiverDcmtkContract(_DcmtkEngine, TestDicomReceiverContract):
    """The same contract with ``engine: dcmtk``: storescp answers success once it wrote the file, Diana takes it in
    (fsync, mark, rename, folder fsync) a moment later, so ``store`` waits for the take-in before the kit looks."""

    def store(self, endpoint: Any, item: Dixel) -> Any:
        from diana_core.testing.waiting import wait_for

        sop_uid = super().store(endpoint, item)
        wait_for(lambda: self.found(endpoint, item), timeout=10, what=f"storescp's file of {sop_uid} taken in")
        return sop_uid


class TestDicomReceiverDcmtkFaults(_DcmtkEngine, TestDicomReceiverFaults):
    """The DIMSE battery against storescp (through the proxy): typed sender errors, nothing kept, nothing
    announced; ``stored`` gives the take-in a moment, since it follows storescp's answer."""

    def stored(self, endpoint: Any, item: Dixel) -> bool:
        time.sleep(0.5)  # what storescp wrote would be taken in well within this (0.1-0.3 s at load 13)
        return super().stored(endpoint, item)


def test_storescu_aborted_mid_transfer_leaves_no_file_and_no_event(endpoint: DicomReceiver, items: list[Dixel],
                                                                      tmp_path: Path) -> None:
    """Half a dataset arrives, then an A-ABORT: the receiver keeps no file (not even a temporary one), announces
    nothing, counts nothing, and the same listener stores the next transfer whole."""
    path = tmp_path / "one.dcm"
    assert items[0].file is not None
    path.write_bytes(items[0].file)
    with FaultProxy("127.0.0.1", endpoint.port) as proxy:
        proxy.set("abort_mid_transfer")
        proc = storescu(proxy.address[1], path)
        assert proc.returncode != 0, "storescu did not notice the abort"
        assert endpoint._server.associations == 1  # the association reached the receiver before the abort
        assert held(endpoint) == [] and added(endpoint) == [] and endpoint.received == 0
        proxy.set("pass")
        assert storescu(proxy.address[1], path).returncode == 0
    assert added(endpoint) == [items[0].tag("SOPInstanceUID")] and endpoint.received == 1
    assert held(endpoint) == [f"{items[0].tag('SOPInstanceUID')}.dcm"]


def test_a_silent_sender_is_cut_off_by_the_receiver_timeout(tmp_path: Path, items: list[Dixel]) -> None:
    """A sender that associates and then says nothing: the receiver aborts it after its ``timeout`` (the sender
    waits up to 30 s), frees the association (max_associations 1: the next sender gets in) and stores nothing."""
    receiver = DicomReceiver(name="conformance-receiver", path=str(tmp_path / "in"), aet=AET, port=0, timeout=1,
                             max_associations=1).start()
    path = tmp_path / "one.dcm"
    assert items[0].file is not None
    path.write_bytes(items[0].file)
    try:
        with FaultProxy("127.0.0.1", receiver.port) as proxy:
            proxy.set("no_response")
            start = time.monotonic()
            proc = storescu(proxy.address[1], path, AET, "-to", "30", "-ta", "30", "-td", "30")
            elapsed = time.monotonic() - start
        assert proc.returncode != 0 and elapsed < 5, (elapsed, proc.stderr[-300:])
        assert held(receiver) == [] and added(receiver) == []
        deadline = time.monotonic() + 3  # the aborted association's thread ends a moment after the abort
        while (proc := storescu(receiver.port, path)).returncode != 0 and time.monotonic() < deadline:
            assert "Local Limit Exceeded" in proc.stderr, proc.stderr[-300:]
            time.sleep(0.1)  # the sender's retry of a transient rejection
        assert proc.returncode == 0, f"the one association slot was not given back: {proc.stderr[-300:]}"
        assert added(receiver) == [items[0].tag("SOPInstanceUID")]
    finally:
        receiver.stop()


def test_a_wrong_called_aet_is_rejected_in_one_line_naming_the_sender(tmp_path: Path, items: list[Dixel]) -> None:
    """require_called_aet: the receiver answers A-ASSOCIATE-RJ; Diana's sender raises a typed one-line error naming
    itself (no retry loop, no False), and nothing is stored."""
    receiver = DicomReceiver(name="conformance-receiver", path=str(tmp_path / "in"), aet=AET, port=0,
                             require_called_aet=True).start()
    try:
        node = DicomNode(name="conformance-sender", host="127.0.0.1", port=receiver.port, aet="NOTTHEAET", timeout=2)
        with pytest.raises(DianaError) as err:
            node.put(items[0])
        text = str(err.value)
        assert "conformance-sender" in text and "\n" not in text and "reject" in text.lower(), text
        assert held(receiver) == [] and added(receiver) == [] and receiver.received == 0
        right = DicomNode(name="conformance-sender", host="127.0.0.1", port=receiver.port, aet=AET, timeout=2)
        assert right.put(items[0]) == items[0].tag("SOPInstanceUID")
        assert added(receiver) == [items[0].tag("SOPInstanceUID")]
    finally:
        receiver.stop()


def test_an_instance_sent_twice_is_one_file_counted_once_and_marked_until_its_study_is_routed(
        endpoint: DicomReceiver, items: list[Dixel], tmp_path: Path) -> None:
    """A sender resending an instance (after a lost answer): the series and study events count one instance and
    list its file once (a route would otherwise send it twice), and its pending mark stays until the
    STUDY_STABLE covering it is acknowledged (it went with the series' acks before: a crash then lost the study)."""
    path = tmp_path / "one.dcm"
    assert items[0].file is not None
    path.write_bytes(items[0].file)
    for _ in range(2):
        assert storescu(endpoint.port, path).returncode == 0
    events = endpoint.changes(now=time.monotonic() + 1)
    kinds = [str(e.event_type) for e in events]
    assert kinds == ["instance_added", "instance_added", "series_stable", "study_stable"], kinds
    series, study = events[2].data, events[3].data
    assert series.meta["Instances"] == 1 and len(series.meta["Files"]) == 1 and study.meta["Instances"] == 1
    for event in events[:3]:
        endpoint.ack(event)
    marks = [p.name for p in Path(endpoint.path).rglob(".*.pending")]
    assert marks == [f".{items[0].tag('SOPInstanceUID')}.dcm.pending"], marks
    endpoint.ack(events[3])
    assert not list(Path(endpoint.path).rglob(".*.pending"))


def test_a_full_disk_under_the_receiver_is_a_transient_refusal_and_leaves_nothing(
        tmp_path: Path, items: list[Dixel], caplog: pytest.LogCaptureFixture) -> None:
    """The receiver's folder on a 1 MiB tmpfs, a 1.3 MB instance: the sender hears 0xA700 (out of resources) as a
    one-line transient error naming itself (a router retries later instead of dead-lettering), once (not resent at
    once), and the receiver keeps no partial file, announces nothing and logs one line naming itself."""
    from diana_core.errors import is_transient
    from diana_dimse.errors import NodeOutOfResources

    disk = tmp_path / "tiny"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True,
                           text=True, timeout=30)
    assert mount.returncode == 0, f"mount failed (these tests need root): {mount.stderr}"
    try:
        receiver = DicomReceiver(name="conformance-receiver", path=str(disk / "in"), aet=AET, port=0).start()
        try:
            ds = ct_instance(0, 0, 0, size=800, run=uuid.uuid4().hex)
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            sender = DicomNode(name="conformance-sender", host="127.0.0.1", port=receiver.port, aet=AET, timeout=5)
            with pytest.raises(NodeOutOfResources) as err:
                sender.put(Dixel.from_pydicom(ds, file=buf.getvalue()))
            text = str(err.value)
            assert is_transient(err.value) and "conformance-sender" in text and "0xA700" in text, text
            assert receiver._server.associations == 1  # refused once, not resent on a new association
            assert held(receiver) == [] and added(receiver) == [] and receiver.received == 0
            logged = [r.getMessage() for r in caplog.records if "cannot store" in r.getMessage()]
            assert len(logged) == 1 and "conformance-receiver" in logged[0] and "No space left" in logged[0], logged
        finally:
            receiver.stop()
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True, timeout=30)
