"""Entry point of diana-dicom-orthanc: registers its endpoint kinds with the Diana plugin manager."""

from __future__ import annotations

from collections.abc import Callable

from diana_core import hookimpl


@hookimpl
def diana_endpoints(register: Callable[[str, type], None]) -> None:
    """Register "Orthanc" and "ObservableOrthanc" (imported here so ``diana --help`` stays fast)."""
    from diana_orthanc.endpoint import Orthanc
    from diana_orthanc.observable import ObservableOrthanc

    register("Orthanc", Orthanc)
    register("ObservableOrthanc", ObservableOrthanc)
