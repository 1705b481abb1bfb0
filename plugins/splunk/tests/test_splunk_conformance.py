"""The conformance kit (diana_core.testing.conformance) against ``FakeSplunk`` (a local HTTP server speaking the
documented HEC and search-job API: Splunk itself cannot run here), through the kit's fault proxy too."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from diana_core import Dixel
from diana_core.testing.conformance import EndpointContract, EndpointFaults
from diana_splunk import Splunk
from diana_splunk.testing import FakeSplunk

EVENTS = "an event index: put() indexes an event, find() searches events; there is no item to get, test or delete"


@pytest.fixture
def fake() -> Iterator[FakeSplunk]:
    with FakeSplunk() as server:
        yield server


@pytest.fixture
def items() -> list[Dixel]:
    study = f"2.25.{uuid.uuid4().int}"
    return [Dixel(tags={"PatientID": "P1", "AccessionNumber": "A1", "StudyInstanceUID": study,
                        "SeriesInstanceUID": f"{study}.1", "SOPInstanceUID": f"{study}.1.{i}"}, level="instances")
            for i in range(2)]


@pytest.fixture
def endpoint(fake: FakeSplunk) -> Splunk:
    return Splunk(name="conformance-splunk", **{k: v for k, v in fake.service_desc().items() if k != "ctype"})


@pytest.fixture
def upstream(fake: FakeSplunk) -> tuple[str, int]:
    return "127.0.0.1", fake.port


@pytest.fixture
def endpoint_at(fake: FakeSplunk) -> Callable[[str, int], Splunk]:
    def build(host: str, port: int) -> Splunk:
        desc = {k: v for k, v in fake.service_desc().items() if k != "ctype"}
        return Splunk(name="conformance-splunk", **{**desc, "host": host, "port": port, "hec_port": port,
                                                    "timeout": 1})
    return build


class TestSplunkContract(EndpointContract):
    levels = ("instances",)
    not_applicable = {
        "put_then_get_exists": EVENTS, "delete_removes": EVENTS, "levels": EVENTS, "not_found_raises": EVENTS,
        "unknown_keyword_get": EVENTS, "unknown_keyword_exists": EVENTS, "unknown_keyword_delete": EVENTS,
        "study_exists_means_complete": EVENTS,
        "put_twice_is_idempotent": "each put is one more event (a log, as the original's HEC use): searches "
                                   "deduplicate with SPL when they need to",
    }

    def test_unknown_keyword_put(self, endpoint: Any, items: list[Dixel]) -> None:
        self._refused(endpoint, "put", items[0])  # nothing to test with exists(): find() must see nothing
        assert self.found(endpoint, items[0]) == [], "Splunk.put() refused the keyword but indexed the event"


class TestSplunkFaults(EndpointFaults):
    def operate(self, endpoint: Any, operation: str, item: Dixel) -> Any:
        """``read`` searches for the item (Splunk has no exists()); ``write`` indexes it."""
        if operation == "read":
            return list(endpoint.find({"SOPInstanceUID": item.tag("SOPInstanceUID")}))
        return endpoint.put(item)
