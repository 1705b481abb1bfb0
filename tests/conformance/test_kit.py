"""The conformance kit itself: an honest endpoint passes it, a broken one fails it with readable messages, and
declarations are checked (a declared check is not collected; a declaration needs a known name and a reason)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from diana_core.embedded import MemoryEndpoint
from diana_core.testing.conformance import EndpointContract, EndpointFaults


@pytest.fixture
def endpoint() -> MemoryEndpoint:
    return MemoryEndpoint(name="conformance-memory")


@pytest.fixture
def items() -> list:
    from tests.conformance.broken_sample import items as sample_items

    return sample_items.__wrapped__()  # type: ignore[attr-defined]


class TestMemoryEndpointContract(EndpointContract):
    """The core's honest in-memory endpoint passes the contract (the kit does not fail correct code)."""

    levels = ("instances",)  # one dict of Dixels keyed by their own level's id: no roll-up to series or studies
    faults_not_applicable = "in memory: no network between Diana and its storage"
    not_applicable = {"study_exists_means_complete": "an in-memory test double: it counts nothing"}


def test_broken_endpoint_fails_the_kit_with_readable_messages(tmp_path: Path) -> None:
    shutil.copy(Path(__file__).with_name("broken_sample.py"), tmp_path / "test_broken_sample.py")
    run = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_broken_sample.py"), "-q",
                          "-p", "no:cacheprovider", "-p", "no:randomly", "--rootdir", str(tmp_path), "-o",
                          "addopts=", "--timeout=120"],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out[-3000:]
    expected = [
        "BrokenStore.get() of an absent instance returned None instead of raising NotFound",
        "BrokenStore: the same item put twice is stored 2 times (find)",
        "BrokenStore.find() accepted the unknown keyword 'conformance_bogus_option'",
        "BrokenStore: exists() after delete()",
        "broken-http: read under fault 'refused' answered False instead of raising a DianaError",
        "broken-http: write under fault 'stall' answered 'queued' instead of raising a DianaError",
        "broken-http: read under fault 'html_login' answered True instead of raising a DianaError",
        "broken-http: write under fault 'http_401' answered 'queued'",
        "MiB of a response announcing 2 GiB into memory",
        "broken-http: put_many of 2 items under fault 'refused' answered BulkResult(done=2",
    ]
    missing = [line for line in expected if line not in out]
    # put() is strict by construction (Endpoint wraps every subclass's put), even in a broken plugin
    assert "BrokenStore.put() accepted the unknown keyword" not in out
    assert "test_fault[huge_body-read]" in out and "huge_body-write" not in out  # declared: not collected
    assert not missing, f"the kit's failure output lacks {missing}:\n{out[-4000:]}"
    assert "passed" not in out.splitlines()[-1] or "failed" in out.splitlines()[-1]


def test_a_declared_check_is_not_collected_and_needs_a_reason() -> None:
    class Declared(EndpointContract):
        not_applicable = {"delete_removes": "read-only archive"}

    assert Declared.test_delete_removes is None  # pytest collects nothing under that name
    assert callable(Declared.test_levels)
    with pytest.raises(TypeError, match="needs the reason"):
        type("NoReason", (EndpointContract,), {"not_applicable": {"delete_removes": " "}})
    with pytest.raises(TypeError, match="unknown check 'delete_everything'; known: put_then_get_exists, put_then_find"):
        type("Misspelt", (EndpointContract,), {"not_applicable": {"delete_everything": "why"}})
    with pytest.raises(TypeError, match="unknown fault 'fault:stal'"):
        type("MisspeltFault", (EndpointFaults,), {"not_applicable": {"fault:stal": "why"}})
