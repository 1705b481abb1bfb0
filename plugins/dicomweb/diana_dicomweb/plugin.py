"""Entry point of diana-dicom-dicomweb: registers its endpoint kinds with the Diana plugin manager."""

from __future__ import annotations

from collections.abc import Callable

from diana_core import hookimpl


@hookimpl
def diana_endpoints(register: Callable[[str, type], None]) -> None:
    """Registers ctypes "DicomWeb" and "ObservableDicomWeb" (imported here so that loading plugins stays cheap)."""
    from diana_dicomweb.endpoint import DicomWeb
    from diana_dicomweb.observable import ObservableDicomWeb

    register("DicomWeb", DicomWeb)
    register("ObservableDicomWeb", ObservableDicomWeb)
