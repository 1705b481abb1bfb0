"""Mock studies, series and instances: plausible, reproducible DICOM headers and small real images.

All randomness comes from one module-private ``random.Random`` (never the global PRNG); ``reset_mock_seed()``
reseeds it and the counters, so the same seed and calls give identical tags and identical file bytes. UIDs are
keyed 128-bit hashes ("2.25.<int>") of a unique path (seed, study counter, series number, instance number), so they
are reproducible, valid and unique (the DIANA hierarchical mint's 4-digit components would collide).
"""

from __future__ import annotations

import functools
import io
import random
import threading
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from attrs import define, field

from diana_core import DicomLevel, Dixel, KeyedUIDMint, dicom_simplify
from diana_core.errors import ValidationError
from diana_mock.plans import MODALITIES, SeriesPlan, series_plans

DEFAULT_SEED = "diana-mock"
UID_MINT = KeyedUIDMint(key=b"diana-mock")


@define
class _MockState:
    seed: str = DEFAULT_SEED
    rng: random.Random = field(factory=lambda: random.Random(DEFAULT_SEED))
    studies: int = 0
    patient_ids: set[str] = field(factory=set)
    accessions: set[str] = field(factory=set)
    lock: threading.RLock = field(factory=threading.RLock)


_STATE = _MockState()


def reset_mock_seed(seed: str | int | None = DEFAULT_SEED) -> None:
    """Reseed the mock PRNG (default "diana-mock") and reset its counters: the next studies repeat exactly."""
    with _STATE.lock:
        _STATE.seed = str(DEFAULT_SEED if seed is None else seed)
        _STATE.rng.seed(_STATE.seed)
        _STATE.studies = 0
        _STATE.patient_ids.clear()
        _STATE.accessions.clear()


def mock_rng() -> random.Random:
    """The module PRNG (for schedules that must replay with the seed)."""
    return _STATE.rng


@functools.cache
def _names(filename: str, top: int) -> tuple[str, ...]:
    """The most frequent ``top`` names of a 1990 US Census list shipped by the ``names`` package."""
    lines = resources.files("names").joinpath(filename).read_text(encoding="ascii").splitlines()
    return tuple(line.split()[0] for line in lines[:top] if line.strip())


def _person(rng: random.Random, sex: str) -> str:
    last = rng.choice(_names("dist.all.last", 2000))
    first = rng.choice(_names("dist.female.first" if sex == "F" else "dist.male.first", 500))
    return f"{last}^{first}^{rng.choice('ABCDEFGHJKLMNPRSTW')}"


def _unique_number(rng: random.Random, digits: int, issued: set[str]) -> str:
    while True:
        value = str(rng.randint(10 ** (digits - 1), 10**digits - 1))
        if value not in issued:
            issued.add(value)
            return value


def _da(dt: datetime) -> str:
    return dt.strftime("%Y%m%d")


def _tm(dt: datetime) -> str:
    return dt.strftime("%H%M%S")


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


@define(eq=False)
class MockStudy(Dixel):
    """A study-level root dixel with patient/study tags and its series (``children``) per the modality's plan."""

    study_datetime: datetime = field(factory=_now, kw_only=True)
    site_name: str = field(default="Mock Site", kw_only=True)
    station_name: str = field(default="Scanner", kw_only=True)
    modality: str = field(default="CT", kw_only=True)
    scale: float = field(default=1.0, kw_only=True)
    max_instances_per_series: int | None = field(default=None, kw_only=True)
    rows: int = field(default=64, kw_only=True)
    columns: int = field(default=64, kw_only=True)
    study_number: int = field(default=0, init=False)

    def __attrs_post_init__(self) -> None:
        self.level = DicomLevel.STUDIES
        self.modality = str(self.modality).upper()
        if self.modality not in MODALITIES:
            raise ValidationError(f"mock modality {self.modality!r} is not supported; use one of {', '.join(MODALITIES)}")
        given = dict(self.tags)
        with _STATE.lock:
            rng = _STATE.rng
            _STATE.studies += 1
            self.study_number = _STATE.studies
            self.tags = self._study_tags(rng)
            self.set_study_description(rng)
            self.tags |= given
            plans = series_plans(self.modality, rng, self.scale, self.max_instances_per_series)
        self.children = [
            MockSeries(parent=self, ser_num=i + 1, ser_desc=p.description, n_instances=p.n_instances, plan=p)
            for i, p in enumerate(plans)
        ]

    def _study_tags(self, rng: random.Random) -> dict[str, Any]:
        sex = rng.choice("MF")
        age_days = rng.randint(18 * 365, 90 * 365)
        birth = self.study_datetime - timedelta(days=age_days)
        study_uid = UID_MINT.remap(f"{_STATE.seed}|study|{self.study_number}")
        return {
            "PatientID": _unique_number(rng, 8, _STATE.patient_ids),
            "PatientName": _person(rng, sex),
            "PatientBirthDate": _da(birth),
            "PatientSex": sex,
            "AccessionNumber": _unique_number(rng, 10, _STATE.accessions),
            "StudyInstanceUID": study_uid,
            "StudyID": str(self.study_number),
            "StudyDate": _da(self.study_datetime),
            "StudyTime": _tm(self.study_datetime),
            "InstitutionName": self.site_name,
            "StationName": self.station_name[:16],
            "Modality": self.modality,
            "ReferringPhysicianName": _person(rng, rng.choice("MF")),
        }

    def set_study_description(self, rng: random.Random | None = None) -> None:
        """StudyDescription "IMG{code} {modality} {anatomy} {contrast}" drawn from the mock PRNG."""
        from diana_mock.plans import ANATOMY, CONTRAST

        rng = rng or _STATE.rng
        code = rng.randint(100, 999)
        self.tags["StudyDescription"] = (
            f"IMG{code} {self.modality} {rng.choice(ANATOMY[self.modality])} {rng.choice(CONTRAST[self.modality])}"
        )
        self.tags.setdefault("BodyPartExamined", self.tags["StudyDescription"].split()[2].replace("-", ""))

    def instances(self) -> list[MockInstance]:
        """Every instance of every series, in order."""
        return [inst for ser in self.children for inst in ser.children]  # type: ignore[misc]


@define(eq=False)
class MockSeries(Dixel):
    """A series of a MockStudy (``parent``); its instances are ``children``."""

    ser_num: int = field(default=0, kw_only=True)
    ser_desc: str = field(default="DICOM Series", kw_only=True)
    n_instances: int = field(default=1, kw_only=True)
    plan: SeriesPlan | None = field(default=None, kw_only=True, repr=False)

    def __attrs_post_init__(self) -> None:
        self.level = DicomLevel.SERIES
        if self.plan is None:
            modality = str(self.tag("Modality") or "CT")
            self.plan = SeriesPlan(self.ser_desc, self.n_instances, "volume", _sop_for(modality))
        self.tags = {
            "SeriesNumber": self.ser_num,
            "SeriesDescription": self.ser_desc,
            "Modality": "CT" if self.plan.kind == "report" else self.tag("Modality", "CT"),
        } | dict(self.tags)
        self.set_seruid()
        self.set_series_datetime()
        self.children = [MockInstance(parent=self, inst_num=i + 1) for i in range(self.n_instances)]

    def set_seruid(self) -> None:
        """SeriesInstanceUID: keyed hash of the study UID and series number."""
        self.tags.setdefault("SeriesInstanceUID", UID_MINT.remap(f"{self.tag('StudyInstanceUID')}|series|{self.ser_num}"))

    def set_series_datetime(self) -> None:
        """Series date/time: the study's, plus two minutes per series number."""
        dt = _study_dt(self) + timedelta(minutes=2 * self.ser_num)
        self.tags.setdefault("SeriesDate", _da(dt))
        self.tags.setdefault("SeriesTime", _tm(dt))


def _sop_for(modality: str) -> str:
    from diana_mock.plans import SOP_CLASSES

    return SOP_CLASSES.get(modality, SOP_CLASSES["CT"])


def _study_dt(dixel: Dixel) -> datetime:
    date, time = str(dixel.tag("StudyDate") or "19700101"), str(dixel.tag("StudyTime") or "000000")
    return datetime.strptime(date + time[:6].ljust(6, "0"), "%Y%m%d%H%M%S")


@define(eq=False)
class MockInstance(Dixel):
    """One instance of a MockSeries; ``as_pydicom_ds()`` / ``gen_file()`` build a valid DICOM file with pixels."""

    inst_num: int = field(default=0, kw_only=True)

    def __attrs_post_init__(self) -> None:
        self.level = DicomLevel.INSTANCES
        plan = getattr(self.parent, "plan", None)
        self.tags = {
            "InstanceNumber": self.inst_num,
            "SOPClassUID": plan.sop_class_uid if plan else _sop_for(str(self.tag("Modality") or "CT")),
        } | dict(self.tags)
        self.set_instuid()
        self.set_inst_datetime()

    def set_instuid(self) -> None:
        """SOPInstanceUID: keyed hash of the series UID and instance number (unique, reproducible)."""
        self.tags.setdefault("SOPInstanceUID", UID_MINT.remap(f"{self.tag('SeriesInstanceUID')}|inst|{self.inst_num}"))

    def set_inst_datetime(self) -> None:
        """Instance creation/content date and time: the series', plus one second per instance."""
        series = self.parent if self.parent is not None else self
        base = datetime.strptime(str(series.tag("SeriesDate")) + str(series.tag("SeriesTime")), "%Y%m%d%H%M%S") \
            if series.tag("SeriesDate") else _study_dt(self)
        dt = base + timedelta(seconds=self.inst_num)
        for prefix in ("InstanceCreation", "Content"):
            self.tags.setdefault(f"{prefix}Date", _da(dt))
            self.tags.setdefault(f"{prefix}Time", _tm(dt))

    def all_tags(self) -> dict[str, Any]:
        """Study, series and instance tags merged (the most specific wins)."""
        chain: list[Dixel] = []
        node: Dixel | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        merged: dict[str, Any] = {}
        for dixel in reversed(chain):
            merged.update(dixel.tags)
        return merged

    def as_pydicom_ds(self) -> Any:
        """A pydicom Dataset (with file meta) suitable for writing to disk."""
        from diana_mock.dataset import build_dataset

        return build_dataset(self)

    def gen_file(self, fn: str | Path | None = None) -> bytes:
        """The DICOM file bytes (explicit VR little endian, with preamble); also written to ``fn`` when given."""
        buf = io.BytesIO()
        self.as_pydicom_ds().save_as(buf, enforce_file_format=True)
        data = buf.getvalue()
        if fn is not None:
            Path(fn).parent.mkdir(parents=True, exist_ok=True)
            Path(fn).write_bytes(data)
        return data

    def to_dixel(self) -> Dixel:
        """A plain instance Dixel with merged tags, a file name and the file bytes (what ``put`` receives)."""
        return Dixel(
            meta={"FileName": f"{self.image_base_fn}.dcm"},
            tags=dicom_simplify(self.all_tags()),
            level=DicomLevel.INSTANCES,
            file=self.gen_file(),
        )
