"""Entry point of diana-dicom-splunk: registers its endpoint kind with the Diana plugin manager."""

from __future__ import annotations

from collections.abc import Callable

from diana_core import hookimpl


@hookimpl
def diana_endpoints(register: Callable[[str, type], None]) -> None:
    """Registers ctype "Splunk" (imported here so that loading plugins stays cheap)."""
    from diana_splunk.endpoint import Splunk

    register("Splunk", Splunk)
