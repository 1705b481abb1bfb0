"""Fixtures of the fault-injection suite: one real site (remote PACS, proxy, research Orthanc) per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from diana_orthanc.testing import orthanc_workdir
from tests.faults.helpers import Site, start_site


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with orthanc_workdir("diana-faults-") as workdir:
        started = start_site(workdir)
        try:
            yield started
        finally:
            started.stop()
