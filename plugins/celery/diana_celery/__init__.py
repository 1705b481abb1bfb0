"""Diana plugin diana-dicom-celery: Collector / FileIndexer units on Celery workers over Redis (``CeleryExecutor``),
a Redis ``JobState`` shared by every machine of a job, and PACS protection enforced across workers."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diana_celery.executor import CeleryExecutor

# public names load on first use, so importing the plugin's entry module (``diana --help``) stays cheap
_LAZY = {
    "CeleryExecutor": "diana_celery.executor",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CeleryExecutor"]
