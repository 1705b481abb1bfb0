"""The core's own plugin: embedded endpoints that need no server (eat our own dog food)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diana_core.embedded import MemoryEndpoint, SqliteRegistry
from diana_core.hookspecs import hookimpl
from diana_core.usecases import routes


@hookimpl
def diana_endpoints(register: Callable[[str, type], None]) -> None:
    register("MemoryEndpoint", MemoryEndpoint)
    register("SqliteRegistry", SqliteRegistry)


@hookimpl
def diana_handlers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    for name in routes.HANDLERS:
        register(name, getattr(routes, name))
