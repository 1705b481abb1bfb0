"""The conformance kit (diana_core.testing.conformance) against ProxiedDicom over the real Orthanc pair: the remote
Orthanc is the PACS (items are stored into it directly, as a modality would), the local one is the proxy that
C-FINDs and C-MOVEs; the fault battery sits between ProxiedDicom and the proxy's REST API."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from diana_core import Dixel
from diana_core.testing.conformance import EndpointContract, EndpointFaults
from diana_orthanc import Orthanc
from diana_orthanc.testdata import conformance_items
from diana_orthanc.testing import OrthancPair
from diana_proxied import ProxiedDicom

NO_PUT = "no put(): the remote PACS is only queried and retrieved from through the proxy; modalities store into it"


@pytest.fixture
def items() -> list[Any]:
    return conformance_items()


@pytest.fixture
def endpoint(clean_orthancs: OrthancPair) -> ProxiedDicom:
    return ProxiedDicom(name="conformance-proxied", proxy_desc=clean_orthancs.local.service_desc(timeout=10),
                        proxy_domain="remote", arrival_timeout=10)


@pytest.fixture
def upstream(orthanc_local: Any) -> tuple[str, int]:
    return orthanc_local.host, orthanc_local.http_port


@pytest.fixture
def endpoint_at(orthanc_local: Any) -> Callable[[str, int], ProxiedDicom]:
    def build(host: str, port: int) -> ProxiedDicom:
        desc = orthanc_local.service_desc(host=host, port=port, timeout=1, retries=1, upload_retries=1)
        return ProxiedDicom(name="conformance-proxied", proxy_desc=desc, proxy_domain="remote")
    return build


class TestProxiedDicomContract(EndpointContract):
    not_applicable = {
        "unknown_keyword_put": NO_PUT,
        "delete_removes": "the remote is never modified: delete() removes the proxy's retrieved copy, while exists() "
                          "and find() ask the remote (the proxy copy's deletion is checked in test_proxied_dicom)",
        "study_exists_means_complete": "exists() is a C-FIND on the remote, which may omit instance counts; the "
                                       "collector compares NumberOfStudyRelatedInstances with the destination",
    }

    @pytest.fixture(autouse=True)
    def _pacs(self, clean_orthancs: OrthancPair) -> None:
        desc = {k: v for k, v in clean_orthancs.remote.service_desc().items() if k != "ctype"}
        self.pacs = Orthanc(name="conformance-pacs", **desc)

    def store(self, endpoint: Any, item: Dixel) -> Any:
        """Into the remote PACS, directly (ProxiedDicom has no put)."""
        return self.pacs.put(item)


class TestProxiedDicomFaults(EndpointFaults):
    operations = ("read",)
    operations_not_applicable = NO_PUT

