"""Diana plugin diana-dicom-mock: reproducible mock DICOM studies (valid files with pixels), devices and sites."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diana_mock.dixels import MockInstance, MockSeries, MockStudy, reset_mock_seed
    from diana_mock.site import MockDevice, MockService, MockSite

# public names load on first use, so importing the plugin's entry module (``diana --help``) stays cheap
_LAZY = {
    "MockDevice": "diana_mock.site",
    "MockInstance": "diana_mock.dixels",
    "MockSeries": "diana_mock.dixels",
    "MockService": "diana_mock.site",
    "MockSite": "diana_mock.site",
    "MockStudy": "diana_mock.dixels",
    "reset_mock_seed": "diana_mock.dixels",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MockDevice", "MockInstance", "MockSeries", "MockService", "MockSite", "MockStudy", "reset_mock_seed"]
