"""Entry point of diana-dicom-mock: registers MockSite and MockDevice (usable as sources) and the ``diana mock`` command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diana_core import hookimpl


@hookimpl
def diana_endpoints(register: Callable[[str, type], None]) -> None:
    """Register the MockSite and MockDevice ctypes."""
    from diana_mock.site import MockDevice, MockSite

    register("MockSite", MockSite)
    register("MockDevice", MockDevice)


@hookimpl
def diana_cli(cli: Any) -> None:
    """Add ``diana mock`` and ``diana demo``."""
    from diana_mock.cli import mock_cmd
    from diana_mock.demo import demo_cmd

    cli.add_command(mock_cmd)
    cli.add_command(demo_cmd)
