"""``dicom_simplify``: normalize a flat tag dict (Orthanc "simplify" style) into something a person can use.

Pure Python on plain mappings: dates become datetimes, dose-report content sequences are flattened, and
missing identifiers get the same fallbacks the original DIANA used.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

_FORMATS = ("%Y%m%d%H%M%S", "%Y%m%d%H%M%S.%f")


def _parse_dt(date: Any, time: Any) -> datetime | None:
    if not date:
        return None
    text = f"{str(date).strip()}{str(time or '').strip() or '000000'}"
    head, dot, frac = text.partition(".")
    if len(head) == 14 and head.isdigit() and (not dot or (0 < len(frac) <= 6 and frac.isdigit())):
        try:  # the usual YYYYMMDDHHMMSS[.ffffff]: what strptime would give, 10x faster
            return datetime(int(head[:4]), int(head[4:6]), int(head[6:8]), int(head[8:10]), int(head[10:12]),
                            int(head[12:14]), int(frac.ljust(6, "0")) if dot else 0)
        except ValueError:
            pass
    for fmt in _FORMATS:
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            continue
    # short times ("1200") are legal DICOM TM values: pad to HHMMSS
    head, _, frac = text[8:].partition(".")
    padded = text[:8] + head.ljust(6, "0") + (f".{frac}" if frac else "")
    for fmt in _FORMATS:
        try:
            return datetime.strptime(padded, fmt)
        except ValueError:
            continue
    return None


def _code_meaning(item: Mapping) -> str | None:
    seq = item.get("ConceptNameCodeSequence")
    if isinstance(seq, list) and seq:
        return seq[0].get("CodeMeaning")
    if isinstance(seq, Mapping):
        return seq.get("CodeMeaning")
    return None


def _content_value(item: Mapping) -> Any:
    kind = item.get("ValueType")
    if kind == "TEXT":
        return item.get("TextValue")
    if kind == "NUM":
        mvs = item.get("MeasuredValueSequence") or [{}]
        value = (mvs[0] if isinstance(mvs, list) else mvs).get("NumericValue")
        try:
            return float(value)
        except (TypeError, ValueError):
            return value
    if kind == "UIDREF":
        return item.get("UID")
    if kind == "DATETIME":
        raw = item.get("DateTime")
        return _parse_dt(str(raw)[:8], str(raw)[8:]) if raw else None
    if kind == "CODE":
        ccs = item.get("ConceptCodeSequence") or [{}]
        return (ccs[0] if isinstance(ccs, list) else ccs).get("CodeMeaning") or "UNKNOWN"
    if kind == "CONTAINER":
        return _flatten_content(item.get("ContentSequence") or [])
    if kind == "IMAGE":  # some devices put a text UUID here, others a referenced SOP instance
        if item.get("TextValue"):
            return item["TextValue"]
        refs = item.get("ReferencedSOPSequence") or [{}]
        return (refs[0] if isinstance(refs, list) else refs).get("ReferencedSOPInstanceUID")
    if kind == "PNAME":
        return item.get("PersonName")
    if kind == "DATE":
        return _parse_dt(item.get("Date"), None)
    return None


def _flatten_content(items: list) -> dict:
    out: dict[str, Any] = {}
    for item in items:
        if not isinstance(item, Mapping):
            continue
        key = _code_meaning(item)
        if key is None:
            continue
        value = _content_value(item)
        if key in out:
            if not isinstance(out[key], list):
                out[key] = [out[key]]
            out[key].append(value)
        else:
            out[key] = value
    return out


def dicom_simplify(tags: Mapping[str, Any], ignore_errors: bool = True) -> dict[str, Any]:
    """Return a new dict: datetimes, flattened structured content and identifier fallbacks.

    Adds StudyDateTime / SeriesDateTime / InstanceCreationDateTime (series falls back to study, instance to
    series then study). A structured report's ContentSequence is flattened to {CodeMeaning: value} under the
    report's title with its ContentDateTime (the original's dose-report shape). Missing
    AccessionNumber := StudyInstanceUID, PatientName := PatientID, StationName := DeviceSerialNumber, else
    the dose report's "Device Observer UID", else "Unknown".
    """
    out = dict(tags)
    study_dt = _parse_dt(out.get("StudyDate"), out.get("StudyTime"))
    series_dt = _parse_dt(out.get("SeriesDate"), out.get("SeriesTime")) or study_dt
    inst_dt = _parse_dt(out.get("InstanceCreationDate"), out.get("InstanceCreationTime")) or series_dt
    for key, value in (("StudyDateTime", study_dt), ("SeriesDateTime", series_dt), ("InstanceCreationDateTime", inst_dt)):
        if value is not None:
            out[key] = value

    report: dict[str, Any] | None = None
    if "ConceptNameCodeSequence" in out and "ContentSequence" in out:
        try:
            report = _structured_report(out)
        except (AttributeError, TypeError, KeyError) as exc:
            if not ignore_errors:
                raise
            logger.debug("could not flatten structured content: %s", exc)

    if not out.get("AccessionNumber") and out.get("StudyInstanceUID"):
        out["AccessionNumber"] = out["StudyInstanceUID"]
    if not out.get("PatientName") and out.get("PatientID"):
        out["PatientName"] = out["PatientID"]
    if not out.get("StationName"):
        observer = report.get("Device Observer UID") if report else None
        out["StationName"] = out.get("DeviceSerialNumber") or observer or "Unknown"
    return out


def _structured_report(out: dict[str, Any]) -> dict[str, Any]:
    """Replace ConceptNameCodeSequence/ContentSequence/ContentDate/ContentTime by one key, the report's title
    (e.g. "X-Ray Radiation Dose Report"), holding the flattened content and its ContentDateTime: the original's
    shape, which dose dashboards and searches are keyed on. Returns that content."""
    title = _code_meaning(out) or "Structured Report"
    content = _flatten_content(out.get("ContentSequence") or [])
    acquisitions = content.get("CT Acquisition")
    if isinstance(acquisitions, dict):
        acquisitions = content["CT Acquisition"] = [acquisitions]
    for exposure in acquisitions or []:
        if isinstance(exposure, dict) and "CT Dose" not in exposure:
            exposure["CT Dose"] = {"Mean CTDIvol": 0}  # GE reports omit it; dashboards need the key
    content_dt = _parse_dt(out.get("ContentDate"), out.get("ContentTime"))
    if content_dt is not None:
        content["ContentDateTime"] = content_dt
    for key in ("ConceptNameCodeSequence", "ContentSequence", "ContentDate", "ContentTime"):
        out.pop(key, None)
    out[title] = content
    return content
