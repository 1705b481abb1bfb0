"""Entry point of diana-dicom-proxied: registers its endpoint kinds with the Diana plugin manager."""

from __future__ import annotations

from collections.abc import Callable

from diana_core import hookimpl


@hookimpl
def diana_endpoints(register: Callable[[str, type], None]) -> None:
    """Register "ProxiedDicom" and "ObservableProxiedDicom" (imported here so startup stays fast)."""
    from diana_proxied.endpoint import ProxiedDicom
    from diana_proxied.observable import ObservableProxiedDicom

    register("ProxiedDicom", ProxiedDicom)
    register("ObservableProxiedDicom", ObservableProxiedDicom)
