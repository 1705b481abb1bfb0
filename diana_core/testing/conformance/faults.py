"""The fault battery: the same endpoint reached through the kit's ``FaultProxy``, one misbehaviour at a time.

A plugin's test module subclasses ``EndpointFaults`` and gives ``upstream`` ((host, port) of its real server),
``endpoint_at`` (a callable (host, port) -> endpoint with a 1-2 s timeout) and ``items``. Each fault must end in a
typed ``DianaError`` whose message is one line naming the service, or (Retry-After) in a success that waited.
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import pytest

from diana_core.dixel import Dixel
from diana_core.errors import AuthenticationError, DianaError, is_transient
from diana_core.testing.conformance.contract import ItemNaming, _declare
from diana_core.testing.conformance.dimse import DIMSE_FAULTS
from diana_core.testing.conformance.proxy import FAULTS, FaultProxy, closed_port

HTTP_FAULTS = ("refused",) + tuple(f for f in FAULTS if f != "pass" and f not in DIMSE_FAULTS)
TCP_FAULTS = ("refused", "reset_request", "reset_response", "stall", "html_login")  # any protocol
DIMSE_BATTERY = TCP_FAULTS + DIMSE_FAULTS  # a DICOM network peer: TCP faults, then A-ASSOCIATE-RJ, abort, no answer
OPERATIONS = ("read", "write")
# faults a bulk write (put_many) also meets: it must count every item failed, none stored
BULK_FAULTS = ("refused", "reset_response", "html_login", "http_401", "malformed_json", "assoc_reject",
               "abort_mid_transfer")
MEMORY_BOUND = 32 * 2**20  # the "huge_body" fault sends 64 MiB (announcing 2 GiB): reading it whole fails this


class EndpointFaults(ItemNaming):
    """Fault checks; a fault or an operation that cannot apply is declared ``not_applicable["fault:NAME"]``."""

    faults: ClassVar[tuple[str, ...]] = HTTP_FAULTS
    operations: ClassVar[tuple[str, ...]] = OPERATIONS
    operations_not_applicable: ClassVar[str] = ""  # why an operation left out of ``operations`` does not apply
    faults_not_applicable: ClassVar[str] = ""  # why the HTTP faults left out of ``faults`` do not apply
    not_applicable: ClassVar[dict[str, str]] = {}
    deadline: ClassVar[float] = 15.0  # seconds any fault may take to surface (timeouts and retries included)
    # after a failed write, ask the ``endpoint`` fixture (the same server, reached directly) that nothing was stored
    check_not_stored: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _declare(cls, ())  # fault declarations filter the parametrization below
        if set(cls.operations) != set(OPERATIONS) and not cls.operations_not_applicable.strip():
            raise TypeError(f"{cls.__name__}.operations leaves out {', '.join(set(OPERATIONS) - set(cls.operations))}"
                            ": give the reason in operations_not_applicable")
        for name in cls.not_applicable:
            fault = name.partition(":")[2].partition(".")[0]
            if name.startswith("fault:") and fault not in cls.faults:
                raise TypeError(f"{cls.__name__}.not_applicable names unknown fault {name!r}; known: "
                                f"{', '.join(cls.faults)}")

    def pytest_generate_tests(self, metafunc: Any) -> None:
        if "fault" in metafunc.fixturenames:
            ops = (*self.operations, *(("write_many",) if "write" in self.operations else ()))
            cases = [(f, op) for f in self.faults for op in ops
                     if f"fault:{f}" not in self.not_applicable and f"fault:{f}.{op}" not in self.not_applicable
                     and (op != "write_many" or f in BULK_FAULTS)]
            metafunc.parametrize(("fault", "operation"), cases, ids=[f"{f}-{op}" for f, op in cases])

    @pytest.fixture
    def proxy(self, upstream: tuple[str, int]) -> Iterator[FaultProxy]:
        with FaultProxy(*upstream) as proxy:
            yield proxy

    def operate(self, endpoint: Any, operation: str, item: Dixel) -> Any:
        """One call that must cross the network: ``read`` asks exists(), ``write`` put()s the item (``write_many``
        is put_many of every item, see ``test_fault``)."""
        if operation == "read":
            return endpoint.exists(self.ref(item), **self.level_kwargs("instances"))
        return endpoint.put(item)

    def test_fault(self, fault: str, operation: str, proxy: FaultProxy,
                   endpoint_at: Callable[[str, int], Any], items: list[Dixel], request: Any) -> None:
        direct = request.getfixturevalue("endpoint") if self.check_not_stored and operation == "write" else None
        address = closed_port() if fault == "refused" else proxy.address
        endpoint = endpoint_at(*address)
        name, item = endpoint.name, items[0]
        proxy.set("pass" if fault == "refused" else fault)
        start = time.monotonic()
        if fault == "huge_body":
            tracemalloc.start()
        try:
            answer = endpoint.put_many(items) if operation == "write_many" else self.operate(endpoint, operation, item)
        except DianaError as exc:
            self._judge(exc, fault, operation, name, time.monotonic() - start)
            if direct is not None and not fault.startswith("retry_after"):
                assert not self.stored(direct, item), (
                    f"{name}: {operation} under fault {fault!r} raised, yet the server holds the item: a partial "
                    "transfer was kept as if it had arrived whole")
            return
        finally:
            peak = tracemalloc.get_traced_memory()[1] if fault == "huge_body" else 0
            tracemalloc.stop()
            if peak > MEMORY_BOUND:
                pytest.fail(f"{name}: {operation} read {peak / 2**20:.0f} MiB of a response announcing 2 GiB into "
                            "memory; refuse bodies over a bound (check Content-Length, stream with a cap)")
        elapsed = time.monotonic() - start
        if operation == "write_many":
            self._judge_bulk(answer, fault, name, len(items), elapsed)
            return
        if fault.startswith("retry_after"):
            assert elapsed >= proxy.retry_after * 0.9, (
                f"{name}: {operation} succeeded after {elapsed:.2f} s without honouring Retry-After: "
                f"{proxy.retry_after}")
            return
        pytest.fail(f"{name}: {operation} under fault {fault!r} answered {answer!r} instead of raising a "
                    "DianaError (a partial or false success)")

    def _judge_bulk(self, result: Any, fault: str, name: str, total: int, elapsed: float) -> None:
        where = f"{name}: put_many of {total} items under fault {fault!r}"
        done, failed = getattr(result, "done", None), getattr(result, "failed", None)
        assert done == 0 and failed is not None and len(failed) == total, (
            f"{where} answered {result!r}: expected 0 done and {total} failed (nothing counted as stored)")
        for label, why in failed:
            assert "\n" not in str(why).strip(), f"{where}: the reason for {label} must be one line: {why!r}"
        assert elapsed < self.deadline, f"{where} took {elapsed:.1f} s (deadline {self.deadline:g} s)"

    def stored(self, endpoint: Any, item: Dixel) -> bool:
        """Whether the server (reached directly, without the proxy) holds ``item``."""
        return bool(endpoint.exists(self.ref(item), **self.level_kwargs("instances")))

    def _judge(self, exc: DianaError, fault: str, operation: str, name: str, elapsed: float) -> None:
        text = str(exc)
        where = f"{name}: {operation} under fault {fault!r} raised {type(exc).__name__}({text!r})"
        assert "\n" not in text.strip(), f"{where}: the message must be one line"
        assert name in text, f"{where}: the message must name the service {name!r}"
        assert elapsed < self.deadline, f"{where} only after {elapsed:.1f} s (deadline {self.deadline:g} s)"
        if fault in ("http_401", "http_403"):
            assert isinstance(exc, AuthenticationError), f"{where}: expected an AuthenticationError"
        elif fault == "http_404":
            assert "url" in text.lower(), f"{where}: a 404 on every path means a wrong URL; say so"
        elif fault == "assoc_reject":
            assert "reject" in text.lower(), f"{where}: an A-ASSOCIATE-RJ must say the association was rejected"
        elif fault.startswith("retry_after") or fault in ("refused", "stall", "reset_request", "abort_mid_transfer",
                                                           "no_response"):
            assert is_transient(exc), f"{where}: expected a transient error (worth retrying)"
