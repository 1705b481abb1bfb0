"""The Watcher's retry bookkeeping: events waiting for another try (each with the time it is due) and destinations
known to be down (until their next probe, and why). No sleeping: the loop asks what is due at each tick."""

from __future__ import annotations

from attrs import define, field

from diana_core.ports import Event
from diana_core.usecases.trigger import Trigger

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 60.0, 120.0, 300.0)
"""Seconds to wait before each retry (about 10 minutes in all, to outlast a server restart); after the last one the
event is dead-lettered. While a destination is down only one event probes it; the others wait without a try."""

ATTEMPT_SECONDS = 3.0
"""Connect budget of one delivery attempt (diana_core.delivery.single_attempt): endpoints make one short try and
the watcher's schedule does the retrying, so the loop never sits in a client library's backoff."""


@define
class Pending:
    """An event waiting for ``trigger``'s next try, due at ``due`` (the loop's clock), after ``attempts`` tries."""

    event: Event
    trigger: Trigger
    attempts: int
    due: float
    error: str


@define
class RetrySchedule:
    """Events waiting for another try, and destinations down until their next probe: while one is down, only the
    event that probes it is tried; the others wait for the probe's outcome without a try."""

    waiting: list[Pending] = field(factory=list)
    down: dict[str, tuple[float, str]] = field(factory=dict)  # destination -> (next probe at, error)

    def wait(self, pending: Pending) -> None:
        """Keep an event for a later try."""
        self.waiting.append(pending)

    def take_due(self, now: float) -> list[Pending]:
        """Remove and return the events due at ``now`` (in the order they were kept)."""
        due = [p for p in self.waiting if p.due <= now]
        self.waiting = [p for p in self.waiting if p.due > now]
        return due

    def take_all(self) -> list[Pending]:
        """Remove and return every waiting event."""
        waiting, self.waiting = self.waiting, []
        return waiting

    def down_until(self, dest: str, now: float) -> tuple[float, str] | None:
        """(next probe at, error) while ``dest`` is down at ``now``, else None."""
        down = self.down.get(dest)
        return down if down is not None and down[0] > now else None

    def failed(self, dest: str, probe_at: float, error: str) -> None:
        """``dest`` failed with a transient error: the next try that reaches it is the one due at ``probe_at``."""
        self.down[dest] = (probe_at, error)

    def recovered(self, dest: str) -> None:
        self.down.pop(dest, None)
