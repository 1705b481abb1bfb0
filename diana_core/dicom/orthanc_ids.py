"""Orthanc's public identifiers, computed locally (they equal what a real Orthanc assigns)."""

from __future__ import annotations

import hashlib


def orthanc_id(
    PatientID: str,
    StudyInstanceUID: str | None = None,
    SeriesInstanceUID: str | None = None,
    SOPInstanceUID: str | None = None,
) -> str:
    """sha1 of the given values joined by "|", lowercase hex in 5 groups of 8 joined by "-"."""
    parts = [PatientID]
    for value in (StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID):
        if value is None:
            break
        parts.append(value)
    digest = hashlib.sha1("|".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return "-".join(digest[i : i + 8] for i in range(0, 40, 8))
