"""Diana core: the hexagon every backend plugs into (domain, ports, plugin manager, use cases, CLI).

No backend library is imported here; backends are plugins in their own distributions (entry-point group "diana").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diana_core.dicom import DicomLevel, DicomUIDMint, KeyedUIDMint, dicom_simplify, orthanc_id
    from diana_core.dixel import Dixel, DixelView
    from diana_core.errors import (
        AuthenticationError,
        ConfigError,
        DianaError,
        EndpointUnavailable,
        InvalidDicom,
        JobError,
        NotFound,
        NotSupportedError,
        PluginError,
        ValidationError,
    )
    from diana_core.guid import GUIDMint
    from diana_core.hookspecs import hookimpl
    from diana_core.plugins import get_plugin_manager
    from diana_core.ports import BulkResult, Endpoint, Event, EventType, Observable, Serializable
    from diana_core.services import Factory, load_services
    from diana_core.usecases.collector import Collector
    from diana_core.usecases.indexer import FileIndexer
    from diana_core.usecases.watcher import Trigger, Watcher

__version__ = "0.1.0"

# every public name loads on first use, so "import diana_core" (and so "diana --help", and a plugin's entry module)
# pays only for what is used
_LAZY = {
    **dict.fromkeys(["DicomLevel", "DicomUIDMint", "KeyedUIDMint", "dicom_simplify", "orthanc_id"], "diana_core.dicom"),
    **dict.fromkeys(["Dixel", "DixelView"], "diana_core.dixel"),
    **dict.fromkeys(["AuthenticationError", "ConfigError", "DianaError", "EndpointUnavailable", "InvalidDicom",
                     "JobError", "NotFound", "NotSupportedError", "PluginError", "ValidationError"], "diana_core.errors"),
    "GUIDMint": "diana_core.guid",
    "hookimpl": "diana_core.hookspecs",
    "get_plugin_manager": "diana_core.plugins",
    **dict.fromkeys(["BulkResult", "Endpoint", "Event", "EventType", "Observable", "Serializable"], "diana_core.ports"),
    **dict.fromkeys(["Factory", "load_services"], "diana_core.services"),
    "Watcher": "diana_core.usecases.watcher",
    "Trigger": "diana_core.usecases.watcher",
    "Collector": "diana_core.usecases.collector",
    "FileIndexer": "diana_core.usecases.indexer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'diana_core' has no attribute {name!r}")


__all__ = [
    "AuthenticationError", "BulkResult", "Collector", "ConfigError", "DianaError", "DicomLevel", "DicomUIDMint",
    "Dixel", "DixelView", "Endpoint", "EndpointUnavailable", "Event", "EventType", "Factory", "FileIndexer", "GUIDMint",
    "InvalidDicom", "JobError", "KeyedUIDMint", "NotFound", "NotSupportedError", "Observable", "PluginError",
    "Serializable", "Trigger", "ValidationError", "Watcher", "dicom_simplify", "get_plugin_manager", "hookimpl",
    "load_services", "orthanc_id", "__version__",
]
