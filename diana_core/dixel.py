"""Dixel: a DICOM-ish element (patient, study, series or instance) with meta, tags, and optional file/pixels.

Pure domain model: no DICOM library is imported here; ``from_pydicom`` duck-types a pydicom Dataset.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from attrs import define, field

from diana_core.dicom import DicomLevel, dicom_simplify, orthanc_id
from diana_core.errors import ValidationError
from diana_core.report import RadiologyReport, plain_text


class DixelView(enum.IntFlag):
    """Which representation(s) of an item an endpoint returns; combine with ``|``, test with ``in``."""

    META = 1  # Orthanc /{level}/{id}
    METAKV = 2  # Orthanc /{level}/{id}/metadata/*
    TAGS = 4  # Orthanc /{level}/{id}/tags
    FILE = 8  # Orthanc /{level}/{id}/file (instances) or /archive (zip)
    PIXELS = 16  # pixel array (file readers only)
    TAGS_FILE = 12

    @classmethod
    def from_label(cls, label: DixelView | int | str) -> DixelView:
        """Accept a view, an int or names joined by "," / "|" / "+" ("tags,file")."""
        if isinstance(label, (cls, int)):
            return cls(label)
        view = cls(0)
        for part in str(label).replace("|", ",").replace("+", ",").split(","):
            name = part.strip().upper()
            if not name:
                continue
            try:
                view |= cls[name]
            except KeyError:
                raise ValidationError(f"unknown view {part!r}; use meta, metakv, tags, file, pixels") from None
        return view


def _to_level(value: DicomLevel | int | str) -> DicomLevel:
    return DicomLevel.from_label(value)


_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN", "SQ"}


def plain_value(value: Any) -> Any:
    """Turn pydicom values (PersonName, MultiValue, DSfloat, IS, UID) into JSON-friendly Python values."""
    if isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [plain_value(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    return str(value)


def _dataset_dict(ds: Any) -> dict[str, Any]:
    tags: dict[str, Any] = {}
    for elem in ds:
        keyword = getattr(elem, "keyword", "")
        if not keyword or keyword == "PixelData":
            continue
        if elem.VR == "SQ":
            tags[keyword] = [_dataset_dict(item) for item in elem.value]
        elif elem.VR in _BINARY_VRS:
            continue
        else:
            tags[keyword] = plain_value(elem.value)
    return tags


def _as_report(value: Any) -> RadiologyReport | None:
    """None stays None; text (or the original's readlines() list) becomes a RadiologyReport."""
    if value is None or isinstance(value, RadiologyReport):
        return value
    return RadiologyReport(value)


def _montage_cpt(ref: Any) -> str:
    """Montage's CPT reference ("/api/v1/cptcode/501/", {"id": 501} or 501) -> its code "501"."""
    if isinstance(ref, Mapping):
        ref = ref.get("id", ref.get("resource_uri"))
    parts = [p for p in str(ref).split("/") if p]
    return parts[-1] if parts else str(ref)


def _iso_datetime(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


@define(eq=False)
class Dixel:
    """A study, series or instance (or patient). ``meta`` holds endpoint data, ``tags`` DICOM keywords."""

    meta: dict[str, Any] = field(factory=dict)
    tags: dict[str, Any] = field(factory=dict)
    level: DicomLevel = field(default=DicomLevel.STUDIES, converter=_to_level)
    parent: Dixel | None = field(default=None, repr=False)
    children: list[Dixel] = field(factory=list, repr=False)
    file: bytes | None = field(default=None, repr=False)
    pixels: Any = field(default=None, repr=False)
    report: RadiologyReport | None = field(default=None, repr=False, converter=_as_report)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Dixel):
            return NotImplemented
        return (self.level, self.meta, self.tags, self.file) == (other.level, other.meta, other.tags, other.file)

    def tag(self, key: str, default: Any = None) -> Any:
        """A tag, falling back to meta, then to the parent's tag."""
        if key in self.tags:
            return self.tags[key]
        if key in self.meta:
            return self.meta[key]
        return self.parent.tag(key, default) if self.parent is not None else default

    def oid(self) -> str:
        """Orthanc id for this level: meta["ID"] when an Orthanc gave one, else computed from the tags."""
        if self.meta.get("ID"):
            return str(self.meta["ID"])
        keys = ["PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"][: int(self.level)]
        values = [self.tag(k) for k in keys]
        if any(v is None for v in values):
            missing = [k for k, v in zip(keys, values, strict=True) if v is None]
            raise ValidationError(f"cannot compute the Orthanc id of a {self.level} dixel: missing {', '.join(missing)}")
        return orthanc_id(*values)

    def sid(self) -> str | None:
        """Serializer id: the AccessionNumber."""
        value = self.tag("AccessionNumber")
        return None if value is None else str(value)

    @property
    def fn(self) -> str | None:
        """Alias for meta["FileName"]."""
        return self.meta.get("FileName")

    @fn.setter
    def fn(self, value: str) -> None:
        self.meta["FileName"] = value

    @property
    def image_base_fn(self) -> str:
        """"{AccessionNumber or StudyInstanceUID}-{SeriesNumber:04}-{InstanceNumber:04}"."""
        base = self.tag("AccessionNumber") or self.tag("StudyInstanceUID")
        return f"{base}-{int(self.tag('SeriesNumber') or 0):04}-{int(self.tag('InstanceNumber') or 0):04}"

    def summary(self) -> dict[str, Any]:
        """Non-PHI identifiers for logs and reports: level and Orthanc id (or file name)."""
        try:
            ident = self.oid()
        except ValidationError:
            ident = self.fn or "?"
        return {"level": str(self.level), "id": ident}

    # --- constructors ----------------------------------------------------------------------------
    @staticmethod
    def from_orthanc(
        meta: Mapping | None = None,
        tags: Mapping | None = None,
        level: DicomLevel | str | int = DicomLevel.STUDIES,
        file: bytes | None = None,
    ) -> Dixel:
        """From Orthanc JSON (meta = /{level}/{id}, tags = simplified tags)."""
        meta = dict(meta or {})
        tags = dict(tags or meta.get("MainDicomTags", {}) | meta.get("PatientMainDicomTags", {}))
        return Dixel(meta=meta, tags=dicom_simplify(tags), level=DicomLevel.from_label(level), file=file)

    @staticmethod
    def from_pydicom(ds: Any, fn: str | None = None, file: bytes | None = None,
                     convert: Callable[[Any], dict[str, Any]] | None = None) -> Dixel:
        """From a pydicom Dataset (duck-typed: iterable of elements with keyword, VR, value). ``convert`` (dataset
        -> keyword: plain value) replaces the generic element conversion, e.g. DcmDir's raw-element decoder."""
        tags = dicom_simplify((convert or _dataset_dict)(ds))
        meta: dict[str, Any] = {}
        if fn is not None:
            meta["FileName"] = str(fn)
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        if syntax:
            meta["TransferSyntaxUID"] = str(syntax)
        level = DicomLevel.INSTANCES if "SOPInstanceUID" in tags else DicomLevel.STUDIES
        return Dixel(meta=meta, tags=tags, level=level, file=file)

    @staticmethod
    def from_montage_json(data: Mapping) -> Dixel:
        """From one Montage search result; CPT codes/body parts are resolved by ``Montage.get_meta``."""
        exam = data.get("exam_type") or {}
        events = data.get("events") or []
        referring = next((e.get("provider", {}).get("name") for e in events if e.get("provider")), None)
        completed = next((e.get("date") for e in reversed(events) if e.get("date")), None)
        tags = {
            "AccessionNumber": data.get("accession_number"),
            "PatientID": data.get("patient_mrn"),
            "StudyDescription": exam.get("description"),
            "ReferringPhysicianName": referring,
            "PatientSex": data.get("patient_sex"),
            "Organization": (data.get("organization") or {}).get("label"),
            "Modality": (exam.get("modality") or {}).get("label"),
        }
        meta = {
            "BodyParts": None,
            "CPTCodes": None,
            "PatientID": data.get("patient_mrn"),
            "PatientAge": data.get("patient_age"),
            "OrderCode": exam.get("code"),
            "ExamCompleted": completed,
            "MontageCPTCodes": [_montage_cpt(c) for c in exam.get("cpts") or []],
        }
        # the fields the original kept beside those: name, status, report text, reader, study time
        last, first = data.get("patient_last_name"), data.get("patient_first_name")
        if last or first:
            meta["PatientName"] = f"{str(last or '').upper()}^{str(first or '').upper()}"
        meta["PatientStatus"] = data.get("patient_status")
        meta["ReportText"] = plain_text(data.get("text"))  # Montage answers HTML
        reader = events[-1].get("provider") if events else None
        meta["ReadingPhysiciansName"] = reader.get("name") if isinstance(reader, Mapping) else None
        study_event = events[-2] if len(events) > 1 else (events[-1] if events else {})
        meta["StudyDateTime"] = _iso_datetime(study_event.get("date"))
        return Dixel(meta=meta, tags=tags, level=DicomLevel.STUDIES, report=meta["ReportText"])

    @staticmethod
    def from_montage_csv(data: Mapping) -> Dixel:
        """From one row of a Montage CSV export (column names as Montage writes them)."""
        tags = {
            "AccessionNumber": data.get("Accession Number"),
            "PatientID": data.get("Patient MRN"),
            "StudyDescription": data.get("Exam Description"),
            "ReferringPhysicianName": data.get("Ordered By"),
            "PatientSex": data.get("Patient Sex"),
            "StudyDate": data.get("Exam Completed Date"),
            "Organization": data.get("Organization"),
        }
        last, first = data.get("Patient Last Name") or "", data.get("Patient First Name") or ""
        meta = {
            "PatientName": f"{last.upper()}^{first.upper()}" if last or first else None,
            "PatientAge": data.get("Patient Age"),
            "OrderCode": data.get("Exam Code"),
            "PatientStatus": data.get("Patient Status"),
        }
        return Dixel(meta=meta, tags={k: v for k, v in tags.items() if v is not None}, report=data.get("Report Text"))

