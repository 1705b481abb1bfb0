"""A mock CT radiation dose structured report: a valid X-Ray Radiation Dose SR (PS3.16 TID 10011) for a MockStudy.

Dose-monitoring deployments index these reports (``dicom_simplify`` nests their content under "X-Ray Radiation
Dose Report"); this gives tests and demos a real one without a scanner. Values are reproducible from the study's
StudyInstanceUID. ``dose_report(study)`` returns a pydicom Dataset; ``dose_report_dixel(study)`` a Dixel with its
file bytes, ready to ``put``.
"""

from __future__ import annotations

import io
import random
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from diana_core import DicomLevel, Dixel

XRAY_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"  # X-Ray Radiation Dose SR Storage

_DCM, _SCT, _UCUM = "DCM", "SCT", "UCUM"
_PROTOCOLS = (("Spiral Acquisition", "116152004", _SCT), ("Sequenced Acquisition", "113804", _DCM),
              ("Constant Angle Acquisition", "113805", _DCM))
_REGIONS = (("Abdomen", "818981001"), ("Chest", "816094009"), ("Head", "69536005"), ("Lumbar spine", "122496007"))


def _code(value: str, scheme: str, meaning: str) -> Sequence:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return Sequence([item])


def _item(kind: str, concept: tuple[str, str, str], relationship: str = "CONTAINS") -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = kind
    item.ConceptNameCodeSequence = _code(*concept)
    return item


def _container(concept: tuple[str, str, str], children: list[Dataset]) -> Dataset:
    item = _item("CONTAINER", concept)
    item.ContinuityOfContent = "SEPARATE"
    item.ContentSequence = Sequence(children)
    return item


def _num(concept: tuple[str, str, str], value: float, unit: str) -> Dataset:
    item = _item("NUM", concept)
    measured = Dataset()
    measured.NumericValue = f"{value:.4f}".rstrip("0").rstrip(".")
    measured.MeasurementUnitsCodeSequence = _code(unit, _UCUM, unit)
    item.MeasuredValueSequence = Sequence([measured])
    return item


def _coded(concept: tuple[str, str, str], value: tuple[str, str, str], relationship: str = "CONTAINS") -> Dataset:
    item = _item("CODE", concept, relationship)
    item.ConceptCodeSequence = _code(*value)
    return item


def _text(concept: tuple[str, str, str], value: str) -> Dataset:
    item = _item("TEXT", concept)
    item.TextValue = value
    return item


def _uid(concept: tuple[str, str, str], value: str, relationship: str = "CONTAINS") -> Dataset:
    item = _item("UIDREF", concept, relationship)
    item.UID = value
    return item


def _datetime(concept: tuple[str, str, str], value: datetime) -> Dataset:
    item = _item("DATETIME", concept)
    item.DateTime = value.strftime("%Y%m%d%H%M%S")
    return item


def _acquisition(rng: random.Random, region: str, region_code: str, event_uid: str) -> tuple[Dataset, float]:
    kind, kind_code, kind_scheme = rng.choice(_PROTOCOLS)
    ctdi = round(rng.uniform(2.0, 30.0), 1)
    length = float(rng.choice((150, 200, 250, 300, 400)))
    dlp = round(ctdi * length / 10.0, 1)
    current = float(rng.randint(80, 400))
    container = _container(("113819", _DCM, "CT Acquisition"), [
        _text(("125203", _DCM, "Acquisition Protocol"), f"{region} {kind.split()[0]}"),
        _coded(("123014", _DCM, "Target Region"), (region_code, _SCT, region)),
        _coded(("113820", _DCM, "CT Acquisition Type"), (kind_code, kind_scheme, kind)),
        _uid(("113769", _DCM, "Irradiation Event UID"), event_uid),
        _container(("113822", _DCM, "CT Acquisition Parameters"), [
            _num(("113824", _DCM, "Exposure Time"), round(rng.uniform(2.0, 12.0), 1), "s"),
            _num(("113825", _DCM, "Scanning Length"), length, "mm"),
            _num(("113826", _DCM, "Nominal Single Collimation Width"), 0.625, "mm"),
            _num(("113827", _DCM, "Nominal Total Collimation Width"), 40.0, "mm"),
            _num(("113823", _DCM, "Number of X-Ray Sources"), 1, "{X-Ray sources}"),
            _container(("113831", _DCM, "CT X-Ray Source Parameters"), [
                _text(("113832", _DCM, "Identification of the X-Ray Source"), "A"),
                _num(("113733", _DCM, "KVP"), float(rng.choice((80, 100, 120, 140))), "kV"),
                _num(("113833", _DCM, "Maximum X-Ray Tube Current"), current, "mA"),
                _num(("113734", _DCM, "X-Ray Tube Current"), current, "mA"),
                _num(("113834", _DCM, "Exposure Time per Rotation"), 0.5, "s"),
            ]),
        ]),
        _container(("113829", _DCM, "CT Dose"), [
            _num(("113830", _DCM, "Mean CTDIvol"), ctdi, "mGy"),
            _coded(("113835", _DCM, "CTDIw Phantom Type"), ("113691", _DCM, "IEC Body Dosimetry Phantom")),
            _num(("113838", _DCM, "DLP"), dlp, "mGy.cm"),
        ]),
    ])
    return container, dlp


def dose_report(study: Dixel | Mapping[str, Any], acquisitions: int | None = None,
                device_uid: str | None = None) -> Dataset:
    """A complete dose SR dataset for a study (its patient/study tags), with ``acquisitions`` CT irradiation
    events (default 1-3); reproducible from the StudyInstanceUID."""
    from diana_mock.dataset import _file_meta
    from diana_mock.dixels import UID_MINT

    tags = dict(study.tags if isinstance(study, Dixel) else study)
    study_uid = str(tags["StudyInstanceUID"])
    rng = random.Random(f"dose-sr|{study_uid}")
    count = acquisitions if acquisitions is not None else rng.randint(1, 3)
    start = datetime.strptime(f"{tags.get('StudyDate', '20200101')}{str(tags.get('StudyTime', '120000'))[:6]}",
                              "%Y%m%d%H%M%S")
    end = start + timedelta(minutes=rng.randint(3, 15))
    region, region_code = rng.choice(_REGIONS)
    device = device_uid or UID_MINT.remap(f"{tags.get('StationName', 'Scanner')}|device")
    events, total = [], 0.0
    for n in range(count):
        container, dlp = _acquisition(rng, region, region_code, UID_MINT.remap(f"{study_uid}|dose-event|{n}"))
        events.append(container)
        total += dlp

    ds = Dataset()
    sop_uid = UID_MINT.remap(f"{study_uid}|dose-sr")
    ds.file_meta = _file_meta(XRAY_DOSE_SR, sop_uid)
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID, ds.SOPInstanceUID = XRAY_DOSE_SR, sop_uid
    for key in ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "AccessionNumber",
                "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "StudyDescription", "ReferringPhysicianName",
                "InstitutionName"):
        if tags.get(key) not in (None, ""):
            setattr(ds, key, str(tags[key]))
    ds.Modality = "SR"
    ds.SeriesInstanceUID = UID_MINT.remap(f"{study_uid}|dose-series")
    ds.SeriesNumber, ds.InstanceNumber = 999, 1
    ds.SeriesDescription = "Dose Report"
    ds.Manufacturer = "Diana Mock"
    ds.DeviceSerialNumber = device[-12:]
    ds.ContentDate, ds.ContentTime = end.strftime("%Y%m%d"), end.strftime("%H%M%S")
    ds.InstanceCreationDate, ds.InstanceCreationTime = ds.ContentDate, ds.ContentTime
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = _code("113701", _DCM, "X-Ray Radiation Dose Report")
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource, template.TemplateIdentifier = "DCMR", "10011"
    ds.ContentTemplateSequence = Sequence([template])
    ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
    ds.ContentSequence = Sequence([
        _coded(("121058", _DCM, "Procedure reported"), ("77477000", _SCT, "Computed Tomography X-Ray"),
               "HAS CONCEPT MOD"),
        _coded(("121005", _DCM, "Observer Type"), ("121007", _DCM, "Device"), "HAS OBS CONTEXT"),
        _uid(("121012", _DCM, "Device Observer UID"), device, "HAS OBS CONTEXT"),
        _datetime(("113809", _DCM, "Start of X-Ray Irradiation"), start),
        _datetime(("113810", _DCM, "End of X-Ray Irradiation"), end),
        _coded(("113705", _DCM, "Scope of Accumulation"), ("113014", _DCM, "Study"), "HAS OBS CONTEXT"),
        _container(("113811", _DCM, "CT Accumulated Dose Data"), [
            _num(("113812", _DCM, "Total Number of Irradiation Events"), count, "{events}"),
            _num(("113813", _DCM, "CT Dose Length Product Total"), round(total, 1), "mGy.cm"),
        ]),
        *events,
        _coded(("113854", _DCM, "Source of Dose Information"), ("113856", _DCM, "Automated Data Collection")),
    ])
    return ds


def dose_report_dixel(study: Dixel | Mapping[str, Any], acquisitions: int | None = None) -> Dixel:
    """The dose SR as an instance Dixel (simplified tags + file bytes)."""
    ds = dose_report(study, acquisitions)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    dixel = Dixel.from_pydicom(ds, file=buffer.getvalue())
    dixel.level = DicomLevel.INSTANCES
    return dixel
