"""The conformance kit (diana_core.testing.conformance) against a real dcmqrscp (its own, so the session PACS's
studies stay as other tests expect them): the contract, TCP and DIMSE faults through the kit's proxy (A-ASSOCIATE-RJ,
an abort mid-transfer, no response), a real A-ASSOCIATE-RJ from dcmqrscp, and a restart of a dcmqrscp of its own."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from diana_core import Dixel
from diana_core.errors import DianaError
from diana_core.testing.conformance import DIMSE_BATTERY, EndpointContract, EndpointFaults, EndpointRestart
from diana_dimse import DicomNode
from diana_dimse.testdata import ct_dixels
from diana_dimse.testing import QRServer, start_dcmqrscp

NO_DELETE = "DIMSE has no delete service: a DICOM node's storage is managed on the node itself"


@pytest.fixture(scope="module")
def qr() -> Iterator[QRServer]:
    work = Path(tempfile.mkdtemp(prefix="diana-conformance-qr-"))
    server = start_dcmqrscp(work, "CONFQR")
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def items() -> list[Dixel]:
    return ct_dixels(size=8)


@pytest.fixture
def endpoint(qr: QRServer) -> DicomNode:
    return DicomNode(name="conformance-node", host="127.0.0.1", port=qr.port, aet=qr.aet, timeout=10)


@pytest.fixture
def upstream(qr: QRServer) -> tuple[str, int]:
    return "127.0.0.1", qr.port


@pytest.fixture
def endpoint_at(qr: QRServer) -> Callable[[str, int], DicomNode]:
    def build(host: str, port: int) -> DicomNode:
        return DicomNode(name="conformance-node", host=host, port=port, aet=qr.aet, timeout=1)
    return build


class TestDicomNodeContract(EndpointContract):
    not_applicable = {
        "delete_removes": NO_DELETE, "unknown_keyword_delete": NO_DELETE,
        "study_exists_means_complete": "C-FIND's NumberOfStudyRelatedInstances is optional (dcmqrscp does not "
                                       "return it); the collector verifies at the destination",
    }


class TestDicomNodeFaults(EndpointFaults):
    faults = DIMSE_BATTERY  # TCP: refused, resets, stall, garbage; DIMSE: A-ASSOCIATE-RJ, abort mid-transfer, no answer
    faults_not_applicable = "the DICOM upper layer, not HTTP: no status codes, login pages or bodies"
    check_not_stored = True


class RestartableQR:
    """A dcmqrscp of this test alone, stopped and started again on the same port with the same database."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.server: QRServer = start_dcmqrscp(work, "RESTARTQR")

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server = start_dcmqrscp(self.work, self.server.aet, port=self.server.port)


class TestDicomNodeRestart(EndpointRestart):
    """dcmqrscp stopped and started again on the same port: its database (index.dat and files) keeps what it
    stored; meanwhile every call is a transient one-line error naming the node (the sender's default engine)."""

    keeps_data = True

    @pytest.fixture
    def server(self, tmp_path: Path) -> Iterator[RestartableQR]:
        server = RestartableQR(tmp_path)
        try:
            yield server
        finally:
            server.stop()

    @pytest.fixture
    def endpoint(self, server: RestartableQR) -> DicomNode:
        return DicomNode(name="conformance-node", host="127.0.0.1", port=server.server.port, aet=server.server.aet,
                         timeout=2)


def test_a_rejected_association_is_one_line_naming_the_node(qr: QRServer, items: list[Dixel]) -> None:
    """A-ASSOCIATE-RJ (dcmqrscp does not know the called AE title) is a typed error, not a hang or a False."""
    node = DicomNode(name="conformance-node", host="127.0.0.1", port=qr.port, aet="NOSUCHAE", timeout=2)
    with pytest.raises(DianaError) as err:
        node.exists(Dixel(tags={"StudyInstanceUID": items[0].tag("StudyInstanceUID")}), level="studies")
    text = str(err.value)
    assert "conformance-node" in text and "\n" not in text and "reject" in text.lower(), text
