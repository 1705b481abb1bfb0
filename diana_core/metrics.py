"""The metrics port: use cases count what they do through three calls; exporters (Prometheus, the status page) read
a ``Recorder``. No exporter library is imported here: ``prometheus_client`` lives in the CLI/daemon layer only.

Names (exported with a ``diana_`` prefix): ``events_seen``, ``events_handled``, ``events_failed``,
``events_dead_lettered``, ``studies_collected``, ``moved_bytes`` (counters), ``retry_queue_depth`` (gauge),
``handling_seconds`` (histogram). Counts a route makes also carry the route's name (``route=``): exported as a
``route`` label.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Protocol, runtime_checkable

from attrs import define, field

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Histogram bucket upper bounds (seconds), Prometheus' defaults extended to a minute."""


@runtime_checkable
class Metrics(Protocol):
    """Where use cases report counts, levels and durations; implementations must be thread-safe and cheap."""

    def inc(self, name: str, amount: float = 1.0, route: str | None = None) -> None:
        """Add ``amount`` to counter ``name`` (and to its count for ``route``, when given)."""

    def set(self, name: str, value: float) -> None:
        """Set gauge ``name`` to ``value``."""

    def observe(self, name: str, value: float) -> None:
        """Record one observation (e.g. seconds) in histogram ``name``."""


class NullMetrics:
    """The default: counts nothing."""

    def inc(self, name: str, amount: float = 1.0, route: str | None = None) -> None:
        pass

    def set(self, name: str, value: float) -> None:
        pass

    def observe(self, name: str, value: float) -> None:
        pass


@define
class Histogram:
    """Cumulative bucket counts, sum and count of one histogram."""

    buckets: list[int] = field(factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    count: int = 0


@define
class Recorder:
    """An in-memory ``Metrics`` that exporters read: counters, gauges, histograms and a per-``bucket`` time series
    of each counter (the last ``keep`` buckets) for rates and throughput charts."""

    bucket: float = 10.0
    keep: int = 180
    clock: object = time.time
    started: float = field(init=False)
    counters: dict[str, float] = field(factory=dict, init=False)
    route_counters: dict[tuple[str, str], float] = field(factory=dict, init=False)  # (name, route) -> count
    gauges: dict[str, float] = field(factory=dict, init=False)
    histograms: dict[str, Histogram] = field(factory=dict, init=False)
    _series: dict[str, deque[tuple[float, float]]] = field(factory=dict, init=False)
    _lock: threading.Lock = field(factory=threading.Lock, init=False)

    def __attrs_post_init__(self) -> None:
        self.started = self._now()

    def _now(self) -> float:
        return float(self.clock())  # type: ignore[operator]

    def inc(self, name: str, amount: float = 1.0, route: str | None = None) -> None:
        now = self._now()
        start = now - now % self.bucket
        with self._lock:
            self.counters[name] = self.counters.get(name, 0.0) + amount
            if route is not None:
                self.route_counters[(name, route)] = self.route_counters.get((name, route), 0.0) + amount
            series = self._series.setdefault(name, deque(maxlen=self.keep))
            if series and series[-1][0] == start:
                series[-1] = (start, series[-1][1] + amount)
            else:
                series.append((start, amount))

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self.gauges[name] = value

    def observe(self, name: str, value: float) -> None:
        with self._lock:
            hist = self.histograms.setdefault(name, Histogram())
            for i, bound in enumerate(BUCKETS):
                if value <= bound:
                    hist.buckets[i] += 1
            hist.total += value
            hist.count += 1

    def series(self, name: str) -> list[tuple[float, float]]:
        """(bucket start, amount) for counter ``name``, empty buckets filled with 0, oldest first."""
        with self._lock:
            points = list(self._series.get(name, ()))
        if not points:
            return []
        now = self._now()
        last = now - now % self.bucket
        by_start = dict(points)
        first = points[0][0]
        count = min(int((last - first) / self.bucket) + 1, self.keep)
        return [(last - (count - 1 - i) * self.bucket, by_start.get(last - (count - 1 - i) * self.bucket, 0.0))
                for i in range(count)]

    def rate_per_minute(self, name: str, window: float = 60.0) -> float:
        """Counter ``name``'s increase per minute over the last ``window`` seconds (or since start)."""
        now = self._now()
        span = max(min(window, now - self.started), 1e-6)
        with self._lock:
            recent = sum(v for t, v in self._series.get(name, ()) if t + self.bucket > now - span)
        return recent / span * 60.0
