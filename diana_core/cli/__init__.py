"""Thin click CLI: parse, build endpoints through the service file, call one use case, render."""

from diana_core.cli.app import cli, main

__all__ = ["cli", "main"]
