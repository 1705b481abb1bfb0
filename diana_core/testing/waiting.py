"""Polling a condition in tests that talk to real servers and daemons: bounded, never a fixed sleep."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


def wait_for(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition",
             interval: float = 0.02) -> Any:
    """Poll ``condition`` every ``interval`` s until it returns something true (that value), at most ``timeout`` s;
    then an AssertionError naming ``what``."""
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        pause.wait(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
