"""Thin click CLI: parse, build endpoints through the service file, call one use case, render."""

from __future__ import annotations

from typing import Any

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: the collector held during start-up (``diana_core.cli.startup``) and the installed
    plugins' entry points cached between runs (``diana_core.plugin_cache``), then the CLI."""
    from diana_core.cli.startup import hold_gc

    hold_gc()
    from diana_core import plugin_cache

    plugin_cache.enable()
    from diana_core.cli.app import main as run

    run(argv)


def __getattr__(name: str) -> Any:
    if name == "cli":  # the click group, imported on first use (main() holds the collector before importing it)
        from diana_core.cli.app import cli

        return cli
    raise AttributeError(f"module 'diana_core.cli' has no attribute {name!r}")
