"""The original DIANA's route handler names, kept as deprecated aliases of Diana's handlers.

The original bound each name to a handler, fixed options and one event type (``say_studies`` = ``say`` on new
studies, ``anon_and_send_instances`` = ``send_item`` of anonymized instances...). ``mk_route`` looks names up here
after the installed handlers, warns once per name with the new spelling, and builds the same route.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

from attrs import define, field

from diana_core.ports import EventType

logger = logging.getLogger(__name__)

_STUDY = (EventType.STUDY_STABLE, EventType.STUDY_ADDED)  # the original's "study added" was Orthanc's StableStudy
_SERIES = (EventType.SERIES_STABLE, EventType.SERIES_ADDED)
_INSTANCE = (EventType.INSTANCE_ADDED,)
_FILE = (EventType.FILE_ADDED,)
_HELLO = {"suffix": "says hello"}


@define(frozen=True)
class RouteAlias:
    """An old handler name: the handler it is now, the options it implied, the events it listened to."""

    handler: str
    options: dict[str, Any] = field(factory=dict)
    events: tuple[EventType, ...] = ()

    def spelled(self) -> str:
        """How to write the route today, e.g. ``send_item`` with ``level=studies, anonymize=True``."""
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{self.handler!r}" + (f" with options {{{opts}}}" if opts else "")


ALIASES: dict[str, RouteAlias] = {
    "say_instances": RouteAlias("say", {}, _INSTANCE),
    "say_hello_instances": RouteAlias("say", _HELLO, _INSTANCE),
    "say_series": RouteAlias("say", {}, _SERIES),
    "say_hello_series": RouteAlias("say", _HELLO, _SERIES),
    "say_studies": RouteAlias("say", {}, _STUDY),
    "say_hello_studies": RouteAlias("say", _HELLO, _STUDY),
    "say_files": RouteAlias("say", {}, _FILE),
    "anon_and_send_studies": RouteAlias("send_item", {"level": "studies", "anonymize": True}, _STUDY),
    "anon_and_send_instances": RouteAlias("send_item", {"level": "instances", "anonymize": True}, _INSTANCE),
    "upload_files": RouteAlias("upload_item", {}, _FILE),
    "upload_and_anonymize_files": RouteAlias("upload_item", {"anonymize": True}, _FILE),
    "index_series": RouteAlias("index_item", {"level": "series"}, _SERIES),
    "index_instances": RouteAlias("index_item", {"level": "instances"}, _INSTANCE),
}


def resolve_alias(name: str, options: dict[str, Any]) -> tuple[str, dict[str, Any], RouteAlias | None]:
    """(handler name, options, alias or None): an old name becomes its new handler with the implied options
    (options given explicitly win), and a DeprecationWarning + log line name the new spelling."""
    alias = ALIASES.get(name)
    if alias is None:
        return name, options, None
    message = f"route handler {name!r} is the original DIANA's name; use {alias.spelled()}"
    warnings.warn(message, DeprecationWarning, stacklevel=3)
    logger.warning("%s", message)
    return alias.handler, {**alias.options, **options}, alias


def alias_event(alias: RouteAlias, source: Any) -> EventType | None:
    """The alias's event the source says it produces (first preference otherwise)."""
    produced = getattr(source, "event_types", None)
    if produced:
        kinds = {EventType.from_label(e) for e in produced}
        for event_type in alias.events:
            if event_type in kinds:
                return event_type
    return alias.events[0] if alias.events else None
