"""docs/conformance.md's ctype x check table is the one the test classes declare today, and every ctype a shipped
plugin registers either runs the kit or says why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from diana_core.testing.conformance import EndpointFaults
from diana_core.testing.conformance.table import END, START, load_classes, registered_ctypes, render

ROOT = Path(__file__).resolve().parents[2]


def test_the_published_table_is_the_declared_one() -> None:
    table = render(load_classes(ROOT), registered_ctypes())
    page = (ROOT / "docs" / "conformance.md").read_text()
    published = page.partition(START)[2].partition(END)[0].strip()
    assert "say why in table.NOT_RUN" not in table, [ln for ln in table.splitlines() if "NOT_RUN" in ln][:3]
    assert published == table.strip(), ("docs/conformance.md is stale: run `python -m "
                                        "diana_core.testing.conformance.table --write docs/conformance.md`")
    for row in ("| DicomReceiver | pass |", "| ProxiedDicom | pass |", "| Redis | pass (r, w, m) |"):
        assert row in table


def test_a_fault_battery_that_leaves_out_an_operation_must_say_why() -> None:
    with pytest.raises(TypeError, match="operations leaves out write: give the reason"):
        type("TestQuiet", (EndpointFaults,), {"operations": ("read",)})
