"""The conformance kit (diana_core.testing.conformance) against Orthanc's DICOMweb plugin: contract and faults."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from diana_core import Dixel
from diana_core.testing.conformance import EndpointContract, EndpointFaults
from diana_dicomweb import DicomWeb
from diana_dicomweb.testing import dicomweb_url
from diana_orthanc.testdata import conformance_items
from diana_orthanc.testing import OrthancServer


@pytest.fixture
def items() -> list[Dixel]:
    return conformance_items()


@pytest.fixture
def endpoint(dicomweb_dest: OrthancServer) -> DicomWeb:
    return DicomWeb(name="conformance-dicomweb", url=dicomweb_url(dicomweb_dest), auth="basic",
                    user=dicomweb_dest.user, password=dicomweb_dest.password, timeout=5)


@pytest.fixture
def upstream(dicomweb_servers: dict[str, OrthancServer]) -> tuple[str, int]:
    return dicomweb_servers["dest"].host, dicomweb_servers["dest"].http_port


@pytest.fixture
def endpoint_at(dicomweb_servers: dict[str, OrthancServer]) -> Callable[[str, int], DicomWeb]:
    server = dicomweb_servers["dest"]

    def build(host: str, port: int) -> DicomWeb:
        return DicomWeb(name="conformance-dicomweb", url=f"http://{host}:{port}/dicom-web", auth="basic",
                        user=server.user, password=server.password, timeout=1, retries=1)
    return build


NO_DELETE = "DICOMweb defines no DELETE (PS3.18); Orthanc's plugin answers 405, reported as NotSupportedError"


class TestDicomWebContract(EndpointContract):
    not_applicable = {
        "delete_removes": NO_DELETE,
        "unknown_keyword_delete": NO_DELETE,
        "study_exists_means_complete": "QIDO answers what the server holds, not how many instances the study "
                                       "should have; the collector verifies delivery through the destination's count",
    }


class TestDicomWebFaults(EndpointFaults):
    pass
