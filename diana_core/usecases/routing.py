"""The router: a routes file's rules as Watcher triggers (one per destination, so one failing destination never holds
back the others), the ``select`` step that applies the rules' conditions to each event, per-rule counts, and the
ledger guard that gives each (rule, destination) its own exactly-once bookkeeping.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import define

from diana_core.dixel import Dixel, DixelView
from diana_core.errors import DianaError
from diana_core.metrics import Metrics, NullMetrics
from diana_core.ports import Event, EventType, HeaderReader, KeysReader
from diana_core.usecases.deadletter import item_id
from diana_core.usecases.ledger import DeliveryLedger, item_key
from diana_core.usecases.rules import ASSOCIATION_KEYS, Facts, Rule, RuleSet, level_of
from diana_core.usecases.trigger import Trigger

logger = logging.getLogger(__name__)

EVENT_OF_LEVEL = {"stable-study": EventType.STUDY_STABLE, "stable-series": EventType.SERIES_STABLE}
ANY_LEVEL = "*"


@define
class RuleCounts:
    """Per rule: events it took, deliveries done, skipped (already delivered), retries, failed tries, dead letters."""

    matched: int = 0
    delivered: int = 0
    skipped: int = 0
    retried: int = 0
    failed: int = 0
    dead: int = 0


def first_file(folder: str) -> str | None:
    """The first (sorted) non-hidden file under ``folder``: the instance a study folder's conditions read."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        names = sorted(f for f in files if not f.startswith("."))
        if names:
            return os.path.join(root, names[0])
    return None


def read_event_header(source: Any, data: Any, keys: Iterable[str] = ()) -> Any:
    """The header conditions look at: read from the event's file (or a study folder's first file) only as far as
    ``keys`` need (KeysReader port) or header-only (HeaderReader), else the item's tags from the source (Orthanc)."""
    path = os.fspath(data) if isinstance(data, str | os.PathLike) else (data.fn if isinstance(data, Dixel) else None)
    if path and isinstance(source, HeaderReader | KeysReader):
        if os.path.isdir(path):
            path = first_file(path)
        if path and keys and isinstance(source, KeysReader):
            return source.read_keys(path, keys)
        if path and isinstance(source, HeaderReader):
            return source.read_header(path)
    if isinstance(data, Dixel) and source is not None:
        fetched = source.get(data, level=data.level, view=DixelView.TAGS)
        return {**fetched.tags, **data.tags}
    return {}


def event_facts(event: Event, source: Any, keys: Iterable[str] = ()) -> Facts:
    """Facts of one event: the tags and association facts it carries, the header (as far as ``keys`` need) read
    only when asked."""
    data = event.data
    tags: Mapping[str, Any] = data.tags if isinstance(data, Dixel) else {}
    association = data.meta.get("Association") if isinstance(data, Dixel) else None
    return Facts(tags=tags, load=lambda: read_event_header(source, data, keys), association=association)


class Router:
    """Applies a RuleSet to the Watcher's events (``select``) and counts per rule (``outcome``)."""

    def __init__(self, rules: RuleSet, ledger: DeliveryLedger | None = None, metrics: Metrics | None = None) -> None:
        self.rules, self.ledger = rules, ledger
        self.metrics: Metrics = metrics or NullMetrics()
        self.counts = {rule.name: RuleCounts() for rule in rules.rules}
        self.unrouted = 0
        self.unreadable = 0
        self._rule_of: dict[int, Rule] = {}
        self._sources: dict[str, Any] = {}

    # --- building --------------------------------------------------------------------------------------------------
    def build(self, services: Any) -> list[Trigger]:
        """One trigger per (rule, destination); a rule without destinations only takes (and counts) its events."""
        from diana_core.usecases.routes import mk_route, resolve

        triggers = []
        for rule in self.rules.rules:
            source = self._sources.get(rule.source)
            if source is None:
                source = self._sources[rule.source] = resolve(rule.source, services, observable=True)
            etype = _event_of(rule, source) if rule.explicit_level else None
            for dest in rule.dests or (None,):
                trigger = mk_route(rule.handler, source, dest, services=services, event_type=etype, **rule.options)
                if not rule.explicit_level:  # the handler's preferred event of this source decides the level
                    rule.level = level_of(trigger.event_type) if trigger.event_type is not None else ANY_LEVEL
                if not rule.dests:
                    break  # nothing to deliver: the rule only takes its events
                assert dest is not None
                trigger.name = f"{rule.name}->{dest}"
                trigger.route = {"handler": rule.handler, "source": rule.source, "dest": dest, "rule": rule.name,
                                 "event": str(trigger.event_type) if trigger.event_type else None,
                                 "options": dict(rule.options)}
                trigger.action = self._guard(rule, dest, trigger.action)
                self._rule_of[id(trigger)] = rule
                triggers.append(trigger)
        return triggers

    def _guard(self, rule: Rule, dest: str, action: Any) -> Any:
        ledger, counts = self.ledger, self.counts[rule.name]

        def deliver(data: Any) -> Any:
            key = item_key(data)  # before the action: a handler may move the file away
            if ledger is not None and ledger.done(rule.name, dest, key):
                counts.skipped += 1
                logger.debug("%s: %s already delivered, skipped", rule.name, item_id(data))
                return None
            result = action(data)
            if ledger is not None:
                ledger.record(rule.name, dest, key)
            return result

        deliver.__name__ = rule.handler
        return deliver

    # --- the Watcher's hooks ---------------------------------------------------------------------------------------
    def select(self, event: Event, candidates: list[Trigger]) -> list[Trigger]:
        """The candidates (triggers of the event's source and type) whose rule takes the event."""
        plain = [t for t in candidates if id(t) not in self._rule_of]
        level = level_of(event.event_type)
        groups = [g for g in (level, ANY_LEVEL) if self.rules.listens(event.source_name, g)]
        if not groups:
            return plain
        keys = sorted({c.key for g in groups for r in self.rules.group(event.source_name, g) for c in r.conditions
                       if c.key not in ASSOCIATION_KEYS})
        facts = event_facts(event, self._sources.get(event.source_name), keys)
        taken: list[Rule] = []
        try:
            for group in groups:
                taken += self.rules.route(event.source_name, group, facts)
        except (DianaError, OSError, ValueError) as exc:
            self.unreadable += 1
            self.unrouted += 1
            self.metrics.inc("events_unrouted")
            logger.warning("source %r: cannot read the header of %s for the routing rules, not routed: %s",
                           event.source_name, item_id(event.data), exc)
            return plain
        if not taken:
            self.unrouted += 1
            self.metrics.inc("events_unrouted")
            logger.debug("source %r: %s matched no rule", event.source_name, item_id(event.data))
        names = set()
        for rule in taken:
            names.add(rule.name)
            self.counts[rule.name].matched += 1
        return plain + [t for t in candidates if id(t) in self._rule_of and self._rule_of[id(t)].name in names]

    def outcome(self, trigger: Trigger, what: str) -> None:
        """Count one try's outcome ("handled", "retry", "dead") for the trigger's rule."""
        rule = self._rule_of.get(id(trigger))
        if rule is None:
            return
        counts = self.counts[rule.name]
        if what == "handled":
            counts.delivered += 1
        elif what == "retry":
            counts.failed += 1
            counts.retried += 1
        elif what == "dead":
            counts.failed += 1
            counts.dead += 1

    def table(self) -> list[dict[str, Any]]:
        """Per-rule counts for status pages: one row per rule, in file order."""
        return [{"route": name, **{k: getattr(c, k) for k in ("matched", "delivered", "skipped", "retried",
                                                                "failed", "dead")}}
                for name, c in self.counts.items()]


def _event_of(rule: Rule, source: Any) -> EventType | str | None:
    """The event type a rule with ``on:``/``event:`` binds to on this source."""
    if rule.event:
        return rule.event
    if rule.level in EVENT_OF_LEVEL:
        return EVENT_OF_LEVEL[rule.level]
    produced = {EventType.from_label(e) for e in getattr(source, "event_types", None) or ()}
    return EventType.FILE_ADDED if EventType.FILE_ADDED in produced else EventType.INSTANCE_ADDED


def association_of(calling: str | None = None, called: str | None = None, peer: str | None = None) -> dict[str, str]:
    """Association facts for ``diana routes test`` (what a receiver would have seen)."""
    values = dict(zip(ASSOCIATION_KEYS, (calling, called, peer), strict=True))
    return {k: v for k, v in values.items() if v}
