"""Entry point of diana-dicom-dcmdir: registers its endpoint kinds with the Diana plugin manager."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diana_core import hookimpl


@hookimpl
def diana_endpoints(register: Callable[[str, type], None]) -> None:
    """Registers ctypes "DcmDir" and "ObservableDcmDir" (imported here so that loading plugins stays cheap)."""
    from diana_dcmdir.dcmdir import DcmDir
    from diana_dcmdir.observable import ObservableDcmDir

    register("DcmDir", DcmDir)
    register("ObservableDcmDir", ObservableDcmDir)


@hookimpl
def diana_cli(cli: Any) -> None:
    """Add ``diana export-png`` (instances as PNG previews named by Orthanc id) and ``diana quarantine``."""
    from diana_dcmdir import quarantine_cli
    from diana_dcmdir.export import _command

    cli.add_command(_command())
    cli.add_command(quarantine_cli._command())
