"""Replaying the Watcher's dead-letter file: each record runs once more through its trigger (found by name, by
handler and source, or rebuilt from its route); records that fail again, or have no trigger, stay in the file."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from attrs import define

from diana_core.redaction import scrub
from diana_core.usecases.deadletter import DeadLetterFile, item_id, item_paths
from diana_core.usecases.trigger import Trigger

# the watcher's records: `diana watch --replay` lines come from the same logger as the daemon's
logger = logging.getLogger("diana_core.usecases.watcher")


@define
class ReplayResult:
    """Outcome of a replay: events handled, events that failed again (kept in the file), records with no route."""

    handled: int = 0
    failed: int = 0
    unroutable: int = 0


def replay_dead_letters(deadletter_path: str, triggers: Sequence[Trigger],
                        routes: Callable[[dict[str, Any]], Trigger | None] | None = None) -> ReplayResult:
    """Run each dead-lettered event once more through its trigger among ``triggers`` (matched by trigger name,
    else handler and source name; ``routes`` may rebuild a trigger from the record's route). Records that fail
    again, or have no trigger, stay in the file; the others are removed."""
    letters = DeadLetterFile(deadletter_path)
    result = ReplayResult()
    keep: list[dict[str, Any]] = []
    for record in letters.records():
        trigger = trigger_for(triggers, record) or (routes(record) if routes is not None else None)
        if trigger is None:
            result.unroutable += 1
            keep.append(record)
            continue
        event = letters.event_of(record)
        try:
            trigger.action(event.data)
        except Exception as exc:  # noqa: BLE001 - keep the record for a later replay
            result.failed += 1
            record = {**record, "error": f"{type(exc).__name__}: {exc}",
                      "attempts": int(record.get("attempts", 0)) + 1}
            logger.warning("replay: %s failed again on %s: %s", trigger.name, item_id(event.data),
                           scrub(record["error"], *item_paths(event.data)))
            keep.append(record)
            continue
        result.handled += 1
    letters.rewrite(keep)
    return result


def trigger_for(triggers: Sequence[Trigger], record: dict[str, Any]) -> Trigger | None:
    """The trigger a dead-letter record names (by trigger name, else by handler and source name), or None."""
    for trigger in triggers:
        if trigger.name == record.get("trigger"):
            return trigger
    source_name = (record.get("event") or {}).get("source_name")
    for trigger in triggers:
        if trigger.handler == record.get("handler") and getattr(trigger.source, "name", None) == source_name:
            return trigger
    return None
