"""Hook specifications: what a Diana plugin may provide. Import ``hookimpl`` from ``diana_core``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("diana")
hookimpl = pluggy.HookimplMarker("diana")


@hookspec
def diana_endpoints(register: Callable[[str, type], None]) -> None:
    """Register endpoint kinds: call ``register(ctype, cls)`` once per class (ctype = service-file name)."""


@hookspec
def diana_handlers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register route handlers usable by watcher triggers: ``register(name, func)``."""


@hookspec
def diana_cli(cli: Any) -> None:
    """Add subcommands to the ``diana`` click group (``cli.add_command(...)``); import click lazily."""


@hookspec
def diana_pixel_cleaners(register: Callable[[str, Callable[[], Any]], None]) -> None:
    """Register burned-in pixel cleaners for the ``clean-pixels`` profile option: ``register(name, factory)``;
    ``factory()`` returns a ``diana_core.pixels.PixelCleaner`` (built once, on first use)."""
