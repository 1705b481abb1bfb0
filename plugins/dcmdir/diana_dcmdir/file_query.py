"""Choosing files of a DcmDir: a header's tags matched against a query (exact values, or glob patterns with * ? [),
and a header reduced to the chosen keywords (plain str/int/float values) as a Dixel."""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from diana_core import Dixel
from diana_core.dicom import DicomLevel


def matches(tags: Mapping[str, Any], query: Mapping[str, Any]) -> bool:
    """True when every key of ``query`` is in ``tags`` with an equal value (or one its glob pattern matches)."""
    for key, want in query.items():
        have = tags.get(key)
        if have is None:
            return False
        if isinstance(want, str) and any(c in want for c in "*?["):
            if not fnmatchcase(str(have), want):
                return False
        elif str(have) != str(want):
            return False
    return True


def selected(ds: Any, keys: tuple[str, ...], path: str) -> Dixel:
    """A Dixel with only the chosen keywords converted (plain str/int/float values)."""
    tags: dict[str, Any] = {}
    for key in keys:
        value = ds.get(key)
        if value is not None and value != "":
            if type(value).__name__ == "MultiValue":
                tags[key] = [str(v) for v in value]
            else:
                tags[key] = value if isinstance(value, (int, float)) else str(value)
    level = DicomLevel.INSTANCES if "SOPInstanceUID" in tags else DicomLevel.STUDIES
    return Dixel(meta={"FileName": path}, tags=tags, level=level)
