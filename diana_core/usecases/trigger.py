"""Trigger: one route of the Watcher, from a source's events of one type to a handler's action on each item."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from attrs import define

from diana_core.ports import Event, EventType


def event_key(label: Any) -> Any:
    """Our EventType for its names and values; any other event type (a script's own Enum member or string, as the
    original's Observables could emit) is compared as it is."""
    try:
        return EventType.from_label(label)
    except ValueError:
        return label


@define(kw_only=True)
class Trigger:
    """Route events of ``event_type`` (None: any) from ``source`` to ``action(item)``; ``dest`` is informational."""

    source: Any
    event_type: EventType | Any | None  # a script's own event types (an Enum, a string) are kept as they are
    action: Callable[[Any], Any]
    dest: Any = None
    name: str = ""
    handler: str = ""
    route: dict[str, Any] | None = None  # {handler, source, dest[, event, options]} when built from service names

    def __attrs_post_init__(self) -> None:
        if self.event_type is not None:
            self.event_type = event_key(self.event_type)
        if not self.handler:
            self.handler = getattr(self.action, "__name__", "") or getattr(
                getattr(self.action, "func", None), "__name__", "action")
        if not self.name:
            dest = f"->{getattr(self.dest, 'name', self.dest)}" if self.dest is not None else ""
            self.name = f"{self.handler}:{getattr(self.source, 'name', '?')}{dest}"

    def matches(self, event: Event) -> bool:
        """True if the event comes from this trigger's source and has its type."""
        if event.source_name != getattr(self.source, "name", None):
            return False
        return self.event_type is None or event_key(event.event_type) == self.event_type
