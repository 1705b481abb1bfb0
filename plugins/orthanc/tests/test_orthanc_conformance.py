"""The conformance kit (diana_core.testing.conformance) against a real Orthanc: contract and fault battery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from diana_core.testing.conformance import EndpointContract, EndpointFaults
from diana_orthanc import Orthanc
from diana_orthanc.testdata import conformance_items
from diana_orthanc.testing import OrthancPair


@pytest.fixture
def items() -> list[Any]:
    return conformance_items()


@pytest.fixture
def endpoint(clean_orthancs: OrthancPair) -> Orthanc:
    server = clean_orthancs.local
    return Orthanc(name="conformance-orthanc", host=server.host, port=server.http_port, user=server.user,
                   password=server.password, timeout=5)


@pytest.fixture
def upstream(orthanc_local: Any) -> tuple[str, int]:
    return orthanc_local.host, orthanc_local.http_port


@pytest.fixture
def endpoint_at(orthanc_local: Any) -> Callable[[str, int], Orthanc]:
    def build(host: str, port: int) -> Orthanc:
        return Orthanc(name="conformance-orthanc", host=host, port=port, user=orthanc_local.user,
                       password=orthanc_local.password, timeout=1, retries=1,
                       upload_retries=1)
    return build


class TestOrthancContract(EndpointContract):
    pass


class TestOrthancFaults(EndpointFaults):
    pass
