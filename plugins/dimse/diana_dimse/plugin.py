"""Entry point of diana-dicom-dimse: registers its endpoint kinds with the Diana plugin manager."""

from __future__ import annotations

from collections.abc import Callable

from diana_core import hookimpl


@hookimpl
def diana_endpoints(register: Callable[[str, type], None]) -> None:
    """Register "DicomNode" and "DicomReceiver" (imported here so startup stays fast; pynetdicom loads on use)."""
    from diana_dimse.node import DicomNode
    from diana_dimse.receiver import DicomReceiver

    register("DicomNode", DicomNode)
    register("DicomReceiver", DicomReceiver)
