"""Diana plugin diana-dicom-dcmdir: DICOM folders (``DcmDir``), folder watching (``ObservableDcmDir``) and file handlers.

pydicom, numpy, Pillow and watchdog are imported where used, so importing this package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diana_dcmdir.dcmdir import DcmDir
    from diana_dcmdir.handlers import DcmFileHandler, ImageFileHandler, TextFileHandler
    from diana_dcmdir.observable import ObservableDcmDir
    from diana_dcmdir.report import ReadReport

# public names load on first use, so importing the plugin's entry module (``diana --help``) stays cheap
_LAZY = {
    "DcmDir": "diana_dcmdir.dcmdir",
    "DcmFileHandler": "diana_dcmdir.handlers",
    "ImageFileHandler": "diana_dcmdir.handlers",
    "ObservableDcmDir": "diana_dcmdir.observable",
    "ReadReport": "diana_dcmdir.report",
    "TextFileHandler": "diana_dcmdir.handlers",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DcmDir", "DcmFileHandler", "ImageFileHandler", "ObservableDcmDir", "ReadReport", "TextFileHandler"]
