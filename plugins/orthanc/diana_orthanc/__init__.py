"""Diana plugin diana-dicom-orthanc: Orthanc PACS endpoints (REST gateway, Orthanc, ObservableOrthanc, Osimis extras).

Public names load lazily so importing the package (e.g. for its pytest fixtures) does not pull in requests.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Orthanc": "diana_orthanc.endpoint",
    "ObservableOrthanc": "diana_orthanc.observable",
    "OrthancGateway": "diana_orthanc.gateway",
    "OrthancRequestError": "diana_orthanc.gateway",
    "get_annotation": "diana_orthanc.osimis_extras",
}


def __getattr__(name: str) -> Any:
    if name == "osimis_extras":
        return importlib.import_module("diana_orthanc.osimis_extras")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'diana_orthanc' has no attribute {name!r}")


__all__ = ["ObservableOrthanc", "Orthanc", "OrthancGateway", "OrthancRequestError", "get_annotation", "osimis_extras"]
