"""PACS protection: how many retrieves a source takes at once, how fast, and when.

A PACS flooded with C-MOVEs fails sub-operations. ``Limits`` says what one source tolerates (concurrent retrieves, a
token-bucket rate, a transfer window such as ``19:00-07:00``); a ``Guard`` enforces them around each unit of work:
in one process (``LocalGuard``) or across every worker (the Celery plugin keeps the counters in Redis).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from datetime import time as dtime
from typing import Any, Protocol, runtime_checkable

from attrs import define, field

from diana_core.errors import ConfigError

OnHold = Callable[[str], None]
"""Called once with a reason ("window", "busy", "rate") when a unit has to wait."""


@define(frozen=True)
class TransferWindow:
    """Daily local-time window ``HH:MM-HH:MM``; crosses midnight when the end is before the start."""

    start: dtime
    end: dtime

    @classmethod
    def parse(cls, text: str) -> TransferWindow:
        try:
            a, b = (part.strip() for part in text.split("-"))
            return cls(dtime.fromisoformat(a), dtime.fromisoformat(b))
        except ValueError:
            raise ConfigError(f"transfer window {text!r} must look like 19:00-07:00") from None

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, now: datetime) -> bool:
        t = now.time()
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def seconds_until_open(self, now: datetime) -> float:
        """0 when open, else the seconds until the window next opens."""
        if self.contains(now):
            return 0.0
        opening = now.replace(hour=self.start.hour, minute=self.start.minute, second=0, microsecond=0)
        delta = (opening - now).total_seconds()
        return delta if delta > 0 else delta + 86400


@define(frozen=True)
class Limits:
    """What one source tolerates: ``max_concurrent`` units at once (0 = any), ``rate`` units per second with
    ``burst`` tokens (0 = any), and a transfer ``window`` outside which work is held (None = always)."""

    max_concurrent: int = 0
    rate: float = 0.0
    burst: int = 1
    window: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.window:
            TransferWindow.parse(self.window)  # validate early
        if self.max_concurrent < 0 or self.rate < 0 or self.burst < 1:
            raise ConfigError("limits: max_concurrent and rate must be >= 0, burst >= 1")

    @property
    def transfer_window(self) -> TransferWindow | None:
        return TransferWindow.parse(self.window) if self.window else None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> Limits:
        known = {"max_concurrent", "rate", "burst", "window"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"limits: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(known))}")
        return cls(max_concurrent=int(data.get("max_concurrent", 0)), rate=float(data.get("rate", 0.0)),
                   burst=int(data.get("burst", 1)), window=data.get("window") or None)

    def asdict(self) -> dict[str, Any]:
        return {"max_concurrent": self.max_concurrent, "rate": self.rate, "burst": self.burst, "window": self.window}


def parse_limits(data: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Limits]:
    """{source service name: Limits} from a service-file / CLI mapping."""
    return {str(name): Limits.from_mapping(value) for name, value in (data or {}).items()}


@runtime_checkable
class Guard(Protocol):
    """Enforces each source's Limits around one unit of work."""

    def slot(self, source: str, on_hold: OnHold | None = None) -> AbstractContextManager[None]:
        """Wait until ``source`` may take one more unit (window open, a free slot, a token); hold it meanwhile."""


@define
class LocalGuard:
    """Limits enforced inside one process (threads of the in-process executor)."""

    limits: dict[str, Limits] = field(factory=dict)
    poll: float = 0.5
    now: Callable[[], datetime] = datetime.now
    _lock: threading.Condition = field(factory=threading.Condition, init=False)
    _active: dict[str, int] = field(factory=dict, init=False)
    _tokens: dict[str, tuple[float, float]] = field(factory=dict, init=False)

    @contextlib.contextmanager
    def slot(self, source: str, on_hold: OnHold | None = None) -> Iterator[None]:
        limits = self.limits.get(source)
        if limits is None:
            yield
            return
        held = False

        def hold(reason: str) -> None:
            nonlocal held
            if not held and on_hold is not None:
                on_hold(reason)
            held = True

        window = limits.transfer_window
        while window is not None and not window.contains(self.now()):
            hold("window")
            time.sleep(min(self.poll, window.seconds_until_open(self.now())))
        with self._lock:
            while limits.max_concurrent and self._active.get(source, 0) >= limits.max_concurrent:
                hold("busy")
                self._lock.wait(self.poll)
            self._active[source] = self._active.get(source, 0) + 1
        try:
            if limits.rate:
                self._take_token(source, limits, hold)
            yield
        finally:
            with self._lock:
                self._active[source] -= 1
                self._lock.notify_all()

    def _take_token(self, source: str, limits: Limits, hold: Callable[[str], None]) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                tokens, last = self._tokens.get(source, (float(limits.burst), now))
                tokens = min(float(limits.burst), tokens + (now - last) * limits.rate)
                if tokens >= 1.0:
                    self._tokens[source] = (tokens - 1.0, now)
                    return
                self._tokens[source] = (tokens, now)
                wait = (1.0 - tokens) / limits.rate
            hold("rate")
            time.sleep(wait)
