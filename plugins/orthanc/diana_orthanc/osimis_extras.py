"""Osimis web viewer extras: summarize the viewer's ROI annotations stored on a study (attachment 9999).

The attachment maps "{instance id}:{frame}" to {tool name: {"data": [measurement, ...]}}; elliptical ROIs carry
``handles.start/end`` (x, y) and ``imageResolution`` (width, height). ``Orthanc.get_annotation`` calls this.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel, DixelView
from diana_core.errors import NotFound

logger = logging.getLogger(__name__)

ATTACHMENT_ID = 9999  # per the Osimis viewer


def _point(handle: Mapping[str, Any] | None) -> tuple[float, float] | None:
    if not isinstance(handle, Mapping) or "x" not in handle or "y" not in handle:
        return None
    return float(handle["x"]), float(handle["y"])


def _summarize(kind: str, data: Mapping[str, Any]) -> dict[str, Any]:
    handles = data.get("handles") or {}
    out: dict[str, Any] = {"Kind": kind}
    for handle, key in (("start", "ROIStart"), ("end", "ROIEnd")):
        if handle in handles:
            out[key] = _point(handles[handle])
    others = {name: _point(h) for name, h in handles.items() if name not in ("start", "end", "textBox")}
    others = {k: v for k, v in others.items() if v is not None}
    if others:
        out["Handles"] = others
    res = data.get("imageResolution")
    if isinstance(res, Mapping):
        out["ROIImageSize"] = (res.get("width"), res.get("height"))
    for key in ("text", "meanStdDev", "area", "length", "rAngle"):
        if key in data:
            out[key] = data[key]
    return out


def get_annotation(source: Any, item: Dixel | str) -> Mapping[str, Any] | None:
    """Summary of a study's Osimis ROIs per instance ({StudyID, Annotations, Counts}); None if it has none.

    Network and auth failures raise (they are not "no annotations").
    """
    oid = item.oid() if isinstance(item, Dixel) else str(item)
    try:
        raw = source.gateway.get_attachment(oid, DicomLevel.STUDIES, ATTACHMENT_ID)
    except NotFound:
        logger.info("%s: no Osimis annotations on study %s", source.name, oid)
        return None
    summary: dict[str, Any] = {"StudyID": oid, "Annotations": [], "Counts": {}}
    if isinstance(item, Dixel):
        for key in ("StudyInstanceUID", "AccessionNumber"):
            if item.tag(key) is not None:
                summary[key] = item.tag(key)
    if not isinstance(raw, Mapping):
        return summary
    instances: dict[str, Dixel] = {}
    for key, tools in raw.items():
        if not tools or not isinstance(tools, Mapping):
            continue  # the viewer leaves empty dicts behind
        inst_id, _, frame = str(key).partition(":")
        for kind, tool in tools.items():
            measurements = tool.get("data", []) if isinstance(tool, Mapping) else []
            for data in measurements:
                if inst_id not in instances:
                    instances[inst_id] = source.get(inst_id, level=DicomLevel.INSTANCES, view=DixelView.TAGS)
                inst = instances[inst_id]
                entry = {
                    "InstanceID": inst_id,
                    "Frame": int(frame) if frame.isdigit() else 0,
                    "SOPInstanceUID": inst.tag("SOPInstanceUID"),
                    "SeriesInstanceUID": inst.tag("SeriesInstanceUID"),
                    "ImagePositionPatient": inst.tag("ImagePositionPatient"),
                    **_summarize(kind, data),
                }
                summary["Annotations"].append(entry)
                summary["Counts"][kind] = summary["Counts"].get(kind, 0) + 1
    return summary
