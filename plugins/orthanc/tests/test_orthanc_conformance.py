"""The conformance kit (diana_core.testing.conformance) against a real Orthanc: contract, fault battery and a
restart of its own Orthanc."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from diana_core.testing.conformance import EndpointContract, EndpointFaults, EndpointRestart
from diana_orthanc import Orthanc
from diana_orthanc.testdata import conformance_items
from diana_orthanc.testing import OrthancPair, OrthancServer, start_orthanc


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


class RestartableOrthanc:
    """An Orthanc of this test alone, stopped and started again on the same ports, credentials and storage."""

    def __init__(self, tmpdir: Path) -> None:
        self.tmpdir = tmpdir
        self.server: OrthancServer = start_orthanc(tmpdir, "restart", "RESTART")

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        old = self.server
        self.server = start_orthanc(self.tmpdir, old.name, old.aet, user=old.user, password=old.password,
                                    http_port=old.http_port, dicom_port=old.dicom_port)


class TestOrthancRestart(EndpointRestart):
    """Orthanc stopped (SIGTERM) and started again on the same ports and storage: it keeps what it stored. The
    endpoint has the defaults a user has, but for a 1 s timeout and one retry (so each call fails within the
    kit's deadline while Orthanc is down, instead of riding out a restart as uploads do by default)."""

    keeps_data = True

    @pytest.fixture
    def server(self, tmp_path: Path) -> Iterator[RestartableOrthanc]:
        server = RestartableOrthanc(tmp_path)
        try:
            yield server
        finally:
            server.stop()

    @pytest.fixture
    def endpoint(self, server: RestartableOrthanc) -> Orthanc:
        s = server.server
        return Orthanc(name="conformance-orthanc", host=s.host, port=s.http_port, user=s.user, password=s.password,
                       timeout=1, retries=1, upload_retries=1)
