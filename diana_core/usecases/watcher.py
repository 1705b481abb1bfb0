"""Watcher: the routing daemon. Triggers map (source, event type) to a handler; sources are Observables.

The loop polls each source every ``source.polling_interval`` (or ``action_interval``), queues events, and runs the
matching triggers' actions. A failing action is logged with the item's non-PHI id; a transient failure (endpoint
unreachable) is retried on a bounded backoff schedule (no sleeping: each retry has a next-attempt time the loop
honours), a permanent one (bad data, a programming error) is not. After the last try the event goes to a dead-letter
JSONL file that ``Watcher.replay`` (or ``diana watch --replay``) can run again. Once every trigger of an event has
handled or dead-lettered it, the source is told (``Acknowledging.ack``), so a source that persists a cursor never
skips an event a killed daemon had not finished: delivery is at least once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from attrs import define, field

from diana_core.delivery import single_attempt
from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel
from diana_core.errors import ConfigError, is_transient
from diana_core.metrics import Metrics, NullMetrics
from diana_core.ports import Acknowledging, Event, Observable, Resuming, Waking
from diana_core.redaction import scrub
from diana_core.usecases.deadletter import DeadLetterFile, item_id, item_paths
from diana_core.usecases.deadletter_replay import ReplayResult, replay_dead_letters
from diana_core.usecases.retry_schedule import ATTEMPT_SECONDS, DEFAULT_RETRY_DELAYS, Pending, RetrySchedule
from diana_core.usecases.trigger import Trigger, event_key

logger = logging.getLogger(__name__)

BATCH = 100
"""Queued events handled per tick before the due retries and the next poll: with thousands queued (a restart's
replay, a burst), a destination that came back gets its waiting events within a batch, not after the whole queue
(the tick's clock reading, which says whether a destination is still down, is at most one batch old)."""


@define
class WatcherStats:
    """Counters: events seen, actions handled, failed attempts, events given up (dead), source poll errors."""

    seen: int = 0
    handled: int = 0
    failed: int = 0
    retried: int = 0
    dead: int = 0
    source_errors: int = 0
    pending_retries: int = 0


@define(kw_only=True)
class Watcher:
    """Polls Observable sources and runs triggers; one failing handler never stops the loop."""

    action_interval: float = 1.0
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS
    deadletter_path: str | None = None
    on_tick: Callable[[WatcherStats], None] | None = None
    attempt_seconds: float | None = ATTEMPT_SECONDS  # None: endpoints keep their own retries (blocking the loop)
    batch: int = BATCH
    clock: Callable[[], float] = time.monotonic
    triggers: list[Trigger] = field(factory=list)
    stats: WatcherStats = field(factory=WatcherStats)
    metrics: Metrics = field(factory=NullMetrics)  # counts/latency for exporters (diana_core.metrics)
    audit: Any = None  # a diana_core.audit.AuditTrail: one line per event handled or dead-lettered
    # routing rules (diana_core.usecases.routing): which matching triggers take an event; each try's outcome
    select: Callable[[Event, list[Trigger]], list[Trigger]] | None = None
    on_outcome: Callable[[Trigger, str], None] | None = None
    last_tick: float | None = field(default=None, init=False)  # clock() of the last completed tick (health probes)
    _queue: queue.SimpleQueue[Event] = field(factory=queue.SimpleQueue, init=False, repr=False)
    _retries: RetrySchedule = field(factory=RetrySchedule, init=False, repr=False)
    _next_poll: dict[int, float] = field(factory=dict, init=False, repr=False)
    _stop: threading.Event = field(factory=threading.Event, init=False, repr=False)
    _woken: threading.Event = field(factory=threading.Event, init=False, repr=False)  # a pushing source has events
    _lock: threading.Lock = field(factory=threading.Lock, init=False, repr=False)
    _open: dict[int, int] = field(factory=dict, init=False, repr=False)  # id(event) -> triggers still working on it

    # --- setup ---------------------------------------------------------------------------------------------------
    def add_trigger(self, trigger: Trigger) -> Trigger:
        """Register a trigger; its source is polled from the next tick on."""
        self.triggers.append(trigger)
        return trigger

    def sources(self) -> list[Any]:
        """Distinct sources of the registered triggers, one per source name: triggers match events by source name,
        so two observers of one source would hand every event to every route twice."""
        seen: dict[Any, Any] = {}
        for trigger in self.triggers:
            seen.setdefault(getattr(trigger.source, "name", None) or id(trigger.source), trigger.source)
        return list(seen.values())

    # --- events ----------------------------------------------------------------------------------------------------
    def fire(self, event: Event) -> None:
        """Queue an event (thread-safe); the loop handles it on its next tick."""
        with self._lock:
            self.stats.seen += 1
        self.metrics.inc("events_seen")
        self._queue.put(event)

    def poll_sources(self, now: float | None = None) -> int:
        """Ask every due source for its changes and queue them; a failing source is logged and skipped (a
        ConfigError, which waiting cannot mend, is raised)."""
        now = self.clock() if now is None else now
        count = 0
        for source in self.sources():
            key = id(source)
            if self._next_poll.get(key, 0.0) > now:
                continue
            self._next_poll[key] = now + self._interval(source)
            try:
                events = list(source.changes())
            except ConfigError:  # a bad configuration (a mistyped folder...) never heals: stop, do not wait for ever
                raise
            except Exception as exc:  # noqa: BLE001 - an outage of one source must not stop the loop
                self.stats.source_errors += 1
                logger.warning("source %r: changes() failed: %s: %s", getattr(source, "name", "?"),
                               type(exc).__name__, exc)
                continue
            for event in events:
                self.fire(event)
                count += 1
        return count

    def _interval(self, source: Any) -> float:
        value = getattr(source, "polling_interval", None)
        return float(value) if value else self.action_interval

    # --- handling --------------------------------------------------------------------------------------------------
    def handle_pending(self, now: float | None = None) -> int:
        """Run actions for up to ``batch`` queued events, then the due retries; returns the number of actions run.
        Stops early (leaving the rest queued, unacknowledged) once ``stop()`` was called."""
        now = self.clock() if now is None else now
        ran = 0
        for _ in range(self.batch):  # bounded: a backlog must not hold a recovered destination's retries back
            if self._stop.is_set():
                break
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                break
            matching = [t for t in self.triggers if t.matches(event)]
            if self.select is not None:
                matching = self.select(event, matching)
            self._open[id(event)] = len(matching)
            if not matching:
                self._ack(event)
            for trigger in matching:
                ran += self._try(event, trigger, attempts=0, now=now)
        due = self._retries.take_due(now)
        for n, pending in enumerate(due):
            if self._stop.is_set():
                for pending in due[n:]:
                    self._retries.wait(pending)
                break
            self.stats.retried += 1
            ran += self._try(pending.event, pending.trigger, attempts=pending.attempts, now=now, error=pending.error)
        self.stats.pending_retries = len(self._retries.waiting)
        self.metrics.set("retry_queue_depth", len(self._retries.waiting))
        return ran

    @staticmethod
    def _dest_key(trigger: Trigger) -> str:
        dest = trigger.dest
        return str(getattr(dest, "name", None) or dest or trigger.name)

    def down_destinations(self) -> dict[str, str]:
        """Destinations whose last attempt failed with a transient error (name -> error): health says "degraded"."""
        return {name: error for name, (_, error) in self._retries.down.items()}

    def _try(self, event: Event, trigger: Trigger, attempts: int, now: float, error: str = "") -> int:
        """Attempt now, or, while the trigger's destination is down, wait for its next probe without a try."""
        down = self._retries.down_until(self._dest_key(trigger), now)
        if down is not None:
            self._retries.wait(Pending(event, trigger, attempts, down[0], error or down[1]))
            return 0
        self._attempt(event, trigger, attempts=attempts, now=now)
        return 1

    def _attempt(self, event: Event, trigger: Trigger, attempts: int, now: float) -> bool:
        attempts += 1
        started = time.perf_counter()
        try:
            if self.attempt_seconds is None:
                out = trigger.action(event.data)
            else:
                with single_attempt(self.attempt_seconds):
                    out = trigger.action(event.data)
        except Exception as exc:  # noqa: BLE001 - a failing handler is recorded, never fatal to the loop
            self.stats.failed += 1
            self.metrics.inc("events_failed", route=trigger.name)
            error = f"{type(exc).__name__}: {exc}"
            ident, shown_error = item_id(event.data), scrub(error, *item_paths(event.data))  # logs: no file names
            if not is_transient(exc):
                logger.error("%s failed on %s, not retried (%s is not transient): %s", trigger.name, ident,
                             type(exc).__name__, shown_error)
                self._give_up(event, trigger, attempts, error)
            elif attempts <= len(self.retry_delays):
                delay = self.retry_delays[attempts - 1]
                logger.warning("%s failed on %s (try %d of %d, retry in %.3g s): %s", trigger.name, ident, attempts,
                               len(self.retry_delays) + 1, delay, shown_error)
                self._retries.wait(Pending(event, trigger, attempts, now + delay, error))
                self._retries.failed(self._dest_key(trigger), now + delay, shown_error)  # /healthz: no file names
                self._outcome(trigger, "retry")
            else:
                logger.error("%s gave up on %s after %d tries: %s", trigger.name, ident, attempts, shown_error)
                self._give_up(event, trigger, attempts, error)
            return False
        self._retries.recovered(self._dest_key(trigger))
        self.metrics.observe("handling_seconds", time.perf_counter() - started)
        self._count_moved(event.data, trigger.name)
        self.stats.handled += 1
        if self.audit is not None:
            self.audit.event(trigger.name, "handled", event.data, out)
        logger.debug("%s handled %s", trigger.name, item_id(event.data))
        self._outcome(trigger, "handled")
        self._finished(event)
        return True

    def _give_up(self, event: Event, trigger: Trigger, attempts: int, error: str) -> None:
        """The trigger is done trying: the event goes to the dead-letter file, then counts as dead."""
        self._dead_letter(event, trigger, attempts, error)
        self.stats.dead += 1  # counted once the record is on disk (readers poll the counter)
        self.metrics.inc("events_dead_lettered", route=trigger.name)
        self._outcome(trigger, "dead")
        self._finished(event)

    def _outcome(self, trigger: Trigger, what: str) -> None:
        if self.on_outcome is not None:
            self.on_outcome(trigger, what)

    def _finished(self, event: Event) -> None:
        """One trigger is done with the event (handled or dead-lettered); the last one acknowledges it."""
        left = self._open.get(id(event), 1) - 1
        if left > 0:
            self._open[id(event)] = left
            return
        self._open.pop(id(event), None)
        self._ack(event)

    def _ack(self, event: Event) -> None:
        source = next((s for s in self.sources() if getattr(s, "name", None) == event.source_name), None)
        if not isinstance(source, Acknowledging):
            return
        try:
            source.ack(event)
        except Exception as exc:  # noqa: BLE001 - the event was handled; a cursor write failing repeats it later
            self.stats.source_errors += 1
            logger.warning("source %r: ack failed: %s: %s", event.source_name, type(exc).__name__, exc)

    def _count_moved(self, data: Any, route: str) -> None:
        self.metrics.inc("events_handled", route=route)
        if isinstance(data, Dixel):
            if data.file is not None:
                self.metrics.inc("moved_bytes", len(data.file), route=route)
            if data.level == DicomLevel.STUDIES:
                self.metrics.inc("studies_collected", route=route)
        elif isinstance(data, str | os.PathLike):  # a folder source's event is the file's path
            with contextlib.suppress(OSError):  # moved away by the handler (remove_src): not counted
                self.metrics.inc("moved_bytes", os.path.getsize(data), route=route)

    def _dead_letter(self, event: Event, trigger: Trigger, attempts: int, error: str) -> None:
        if self.audit is not None:
            self.audit.event(trigger.name, "dead", event.data, reason=error)
        if not self.deadletter_path:
            return
        DeadLetterFile(self.deadletter_path).append(event, trigger, attempts, error)

    # --- loop ------------------------------------------------------------------------------------------------------
    def tick(self, now: float | None = None) -> int:
        """One cycle: poll due sources, then handle queued events and due retries."""
        now = self.clock() if now is None else now
        self.poll_sources(now)
        ran = self.handle_pending(now)
        self.last_tick = self.clock()
        if self.on_tick is not None:
            self.on_tick(self.stats)
        return ran

    def _wait_time(self) -> float:
        now = self.clock()
        candidates = [self.action_interval]
        candidates += [t - now for t in self._next_poll.values()]
        candidates += [p.due - now for p in self._retries.waiting]
        return max(0.0, min(candidates))

    def run(self, max_seconds: float | None = None) -> WatcherStats:
        """Loop until ``stop()`` (or max_seconds); waits on an event between ticks, so stop() is immediate."""
        self._stop.clear()
        deadline = None if max_seconds is None else self.clock() + max_seconds
        logger.info("watcher started: %d trigger(s), %d source(s)", len(self.triggers), len(self.sources()))
        self._wake_on_push()
        try:
            while not self._stop.is_set():
                self.tick()
                if deadline is not None and self.clock() >= deadline:
                    break
                if self._queue.empty():
                    self._woken.wait(self._wait_time())  # a Waking source (or stop()) cuts the wait short
                    self._woken.clear()
        finally:
            self._park_retries()
            for source in self.sources():
                try:
                    source.stop()
                except Exception as exc:  # noqa: BLE001 - shutting down: report and release the others
                    logger.warning("source %r: stop() failed: %s", getattr(source, "name", "?"), exc)
            logger.info("watcher stopped: seen %d, handled %d, failed %d, dead %d", self.stats.seen,
                        self.stats.handled, self.stats.failed, self.stats.dead)
        return self.stats

    def _park_retries(self) -> None:
        """At the end of the loop: events of sources that announce unacknowledged events again at the next start
        (``Resuming``) are left unacknowledged; the others' retries go to the dead-letter file for a replay."""
        resuming = {getattr(s, "name", None) for s in self.sources() if isinstance(s, Resuming) and s.resumes()}
        left = 0
        while True:
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                break
            if event.source_name in resuming:
                left += 1
            else:
                matching = [t for t in self.triggers if t.matches(event)]
                if self.select is not None:
                    matching = self.select(event, matching)
                self._open[id(event)] = len(matching)
                for t in matching:
                    self._retries.wait(Pending(event, t, 0, 0.0, "stopped before it was handled"))
        waiting = self._retries.take_all()
        kept = [p for p in waiting if p.event.source_name in resuming]
        left += len({id(p.event) for p in kept})
        parked = [p for p in waiting if p.event.source_name not in resuming]
        if left:
            logger.warning("%d event(s) not yet handled are left to the next start (their sources announce them "
                           "again)", left)
        if parked and self.deadletter_path:
            logger.warning("%d event(s) waiting for a retry written to the dead-letter file", len(parked))
            for pending in parked:
                self._give_up(pending.event, pending.trigger, pending.attempts, pending.error)
        self.stats.pending_retries = 0

    def stop(self) -> None:
        """Ask ``run()`` to return after the current tick; safe from signal handlers and other threads."""
        self._stop.set()
        self._woken.set()

    def _wake_on_push(self) -> None:
        """Sources that push (a folder watcher, a C-STORE receiver) wake the loop at once instead of waiting for
        their next poll: routing latency is then the handler's time, not the polling interval."""
        for source in self.sources():
            if isinstance(source, Waking):
                source.set_waker(functools.partial(self._poke, id(source)))

    def _poke(self, key: int) -> None:
        self._next_poll[key] = 0.0  # due now
        self._woken.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- dead letters ---------------------------------------------------------------------------------------------
    def replay(self, deadletter_path: str, routes: Callable[[dict[str, Any]], Trigger | None] | None = None,
               ) -> ReplayResult:
        """Run each dead-lettered event once more through its trigger (matched by trigger name, else handler and
        source name; ``routes`` may rebuild a trigger from the record's route). Records that fail again, or have no
        trigger, stay in the file; the others are removed."""
        result = replay_dead_letters(deadletter_path, self.triggers, routes)
        self.stats.handled += result.handled
        return result


def install_signal_handlers(watcher: Watcher, signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM),
                            ) -> Callable[[], None]:
    """Make SIGINT/SIGTERM stop the watcher cleanly (main thread only); returns a function restoring the old ones."""
    previous = {}

    def handler(signum: int, frame: Any) -> None:
        logger.info("signal %d: stopping the watcher", signum)
        watcher.stop()

    for sig in signals:
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


__all__ = ["DEFAULT_RETRY_DELAYS", "Observable", "ReplayResult", "Trigger", "Watcher", "WatcherStats", "event_key",
           "install_signal_handlers"]
