"""The restart check: the endpoint's real server is stopped and started again while Diana holds the endpoint.

A plugin's test module subclasses ``EndpointRestart`` and gives ``server`` (its own server process with ``stop()``
and ``start()``, same address both times), ``endpoint`` (reaching it, with a 1-2 s timeout) and ``items``. While the
server is down every call ends in a transient one-line ``DianaError`` naming the service (never False, never a
success); once it is back the same endpoint object works again, holding exactly what the server holds.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from diana_core.dixel import Dixel
from diana_core.errors import DianaError, is_transient
from diana_core.testing.conformance.contract import ItemNaming


class EndpointRestart(ItemNaming):
    """Down, then up again: typed transient errors while down, a working endpoint after, nothing counted twice."""

    deadline: ClassVar[float] = 15.0  # seconds one call may take to fail while the server is down
    keeps_data: ClassVar[bool] = False  # True when the server persists what it held across a restart

    def store(self, endpoint: Any, item: Dixel) -> Any:
        return endpoint.put(item)

    def holds(self, endpoint: Any, item: Dixel) -> bool:
        return bool(endpoint.exists(self.ref(item), **self.level_kwargs("instances")))

    def _down(self, endpoint: Any, what: str, call: Any) -> None:
        name, start = endpoint.name, time.monotonic()
        try:
            answer = call()
        except DianaError as exc:
            text, elapsed = str(exc), time.monotonic() - start
            where = f"{name}: {what} while the server is down raised {type(exc).__name__}({text!r})"
            assert "\n" not in text.strip(), f"{where}: the message must be one line"
            assert name in text, f"{where}: the message must name the service {name!r}"
            assert is_transient(exc), f"{where}: expected a transient error (the server comes back)"
            assert elapsed < self.deadline, f"{where} only after {elapsed:.1f} s (deadline {self.deadline:g} s)"
            return
        raise AssertionError(f"{name}: {what} while the server is down answered {answer!r} instead of raising a "
                             "DianaError (a false answer or a false success)")

    def test_restart(self, server: Any, endpoint: Any, items: list[Dixel]) -> None:
        name, before, during = endpoint.name, items[0], items[1]
        self.store(endpoint, before)
        assert self.holds(endpoint, before), f"{name}: an item put moments ago is not there"
        server.stop()
        self._down(endpoint, "put", lambda: self.store(endpoint, during))
        self._down(endpoint, "exists", lambda: self.holds(endpoint, before))
        bulk = endpoint.put_many(items[1:])
        assert bulk.done == 0 and len(bulk.failed) == len(items) - 1, (
            f"{name}: put_many while the server is down counted {bulk.done} stored, {len(bulk.failed)} failed")
        server.start()
        assert not self.holds(endpoint, during), f"{name}: an item whose put failed is there after the restart"
        assert self.holds(endpoint, before) is self.keeps_data, (
            f"{name}: after a restart exists() says {not self.keeps_data} for an item put before it "
            f"(keeps_data is {self.keeps_data})")
        self.store(endpoint, during)  # the same endpoint object reconnects on its own
        assert self.holds(endpoint, during), f"{name}: put after the restart did not store the item"
