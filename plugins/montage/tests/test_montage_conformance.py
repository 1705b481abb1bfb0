"""The conformance kit (diana_core.testing.conformance) against ``FakeMontage`` (a local HTTP server speaking
Montage's search API: Montage itself cannot run here), directly and through the kit's fault proxy."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from diana_core import Dixel
from diana_core.testing.conformance import EndpointContract, EndpointFaults
from diana_montage import Montage
from diana_montage.testing import FakeMontage

READ_ONLY = "a read-only report search: Diana never stores, replaces or deletes reports in Montage"


@pytest.fixture
def fake() -> Iterator[FakeMontage]:
    server = FakeMontage().start()
    yield server
    server.stop()


@pytest.fixture
def items(fake: FakeMontage) -> list[Dixel]:
    """Studies the server already holds (nothing is put into a report search)."""
    return [Dixel(tags={"AccessionNumber": r["accession_number"]}) for r in fake.reports[:2]]


def _desc(fake: FakeMontage, **extra: Any) -> dict[str, Any]:
    return {**{k: v for k, v in fake.service_desc().items() if k != "ctype"}, **extra}


@pytest.fixture
def endpoint(fake: FakeMontage) -> Montage:
    return Montage(**_desc(fake, name="conformance-montage"))


@pytest.fixture
def upstream(fake: FakeMontage) -> tuple[str, int]:
    return "127.0.0.1", fake.port


@pytest.fixture
def endpoint_at(fake: FakeMontage) -> Callable[[str, int], Montage]:
    def build(host: str, port: int) -> Montage:
        return Montage(**_desc(fake, name="conformance-montage", host=host, port=port, timeout=1, retries=1))
    return build


class TestMontageContract(EndpointContract):
    levels = ("studies",)  # reports are per study (accession number)
    identity_key = "AccessionNumber"
    not_applicable = {
        "put_then_get_exists": READ_ONLY, "put_then_find": READ_ONLY, "put_twice_is_idempotent": READ_ONLY,
        "delete_removes": READ_ONLY, "levels": READ_ONLY, "unknown_keyword_put": READ_ONLY,
        "unknown_keyword_delete": READ_ONLY, "study_exists_means_complete": READ_ONLY,
    }

    def ref(self, item: Dixel, level: str = "studies") -> Dixel:
        return Dixel(tags={"AccessionNumber": item.tag("AccessionNumber")})

    def query(self, item: Dixel, level: str = "studies") -> dict[str, Any]:
        return {"q": item.tag("AccessionNumber")}

    def level_kwargs(self, level: str) -> dict[str, Any]:
        return {}

    def test_unknown_keyword_get(self, endpoint: Any, items: list[Dixel]) -> None:
        self._refused(endpoint, "get", self.ref(items[0]))  # the item is on the server already


class TestMontageFaults(EndpointFaults):
    operations = ("read",)
    operations_not_applicable = "nothing is ever written to Montage (a read-only search API)"
    level_keyword = None

    def ref(self, item: Dixel, level: str = "studies") -> Dixel:
        return Dixel(tags={"AccessionNumber": item.tag("AccessionNumber")})
