"""Mock imaging devices, services and sites that generate studies on a schedule into any endpoint with ``put``.

Time is simulated: ``MockSite.run`` walks the devices' schedules in order of due time and, with ``speed`` > 1,
waits only ``simulated delay / speed`` of real time (an injectable clock and sleep make tests instant).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import Any

from attrs import define, field

from diana_core import BulkResult, Dixel, Endpoint, Event, EventType, Observable
from diana_core.errors import ConfigError, ValidationError
from diana_mock.dixels import MockStudy, mock_rng
from diana_mock.plans import MODALITIES

StudyCallback = Callable[[MockStudy, BulkResult], None]


@define(kw_only=True)
class FolderSink(Endpoint):
    """Fallback destination when the DcmDir plugin is not installed: writes each file as path/FileName."""

    name: str = "MockFolder"
    path: str = "."

    def check(self) -> bool:
        return Path(self.path).is_dir()

    def put(self, item: Dixel, **kwargs: Any) -> str:
        if item.file is None:
            raise ValidationError(f"{self.name}: item {item.summary()['id']} has no file bytes")
        target = Path(self.path) / (item.fn or f"{item.image_base_fn}.dcm")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.file)
        return str(target)


def as_sink(dest: Any) -> Any:
    """An endpoint for ``dest``: an Endpoint as-is, a folder path -> DcmDir (or FolderSink), None -> None."""
    if dest is None or not isinstance(dest, (str, PathLike)):
        return dest
    path = Path(dest)
    path.mkdir(parents=True, exist_ok=True)
    try:
        from diana_core.services import build_endpoint

        return build_endpoint("DcmDir", {"path": str(path)}, service_name=str(path))
    except ConfigError:  # DcmDir plugin not installed: plain file writes
        return FolderSink(name=str(path), path=str(path))


def push_study(study: MockStudy, dest: Any, workers: int = 1) -> BulkResult:
    """Generate every file of ``study`` and put it to ``dest`` (instances are built lazily, one at a time)."""
    sink = as_sink(dest)
    if sink is None:  # nothing to put to: count what was generated
        return BulkResult(done=len(study.instances()))
    items = (inst.to_dixel() for inst in study.instances())
    result: BulkResult = sink.put_many(items, workers=workers)  # every Endpoint has put_many (the port's default)
    return result


@define(kw_only=True)
class MockDevice(Endpoint, Observable):
    """An imaging device that generates studies on a schedule (``studies_per_hour``, jittered).

    Fields:
        site_name: InstitutionName of the generated studies.
        station_name: StationName of the device.
        modality: CT, MR, CR or US: which series plan the studies follow.
        studies_per_hour: Mean rate of new studies (jittered).
        action_interval: Seconds of simulated time between schedule checks.
        scale: Multiply instance counts per series.
        max_instances_per_series: Cap on the instances of any series (small test studies).
    """

    event_types = (EventType.STUDY_ADDED,)
    name: str = "MockDevice"
    site_name: str = "Mock Facility"
    station_name: str = "Imaging Device"
    modality: str = "CT"
    studies_per_hour: float = 6.0
    action_interval: float = 5.0
    scale: float = 1.0
    max_instances_per_series: int | None = None
    next_due: datetime | None = field(init=False, default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        self.modality = str(self.modality).upper()
        if self.modality not in MODALITIES:
            raise ConfigError(f"mock device {self.name!r}: modality {self.modality!r} is not one of {', '.join(MODALITIES)}")

    @property
    def polling_interval(self) -> float:  # type: ignore[override]
        return self.action_interval

    def check(self) -> bool:
        return True

    def gen_study(self, study_datetime: datetime | None = None) -> MockStudy:
        """A new study from this device (now, unless a datetime is given)."""
        kwargs: dict[str, Any] = {} if study_datetime is None else {"study_datetime": study_datetime}
        return MockStudy(site_name=self.site_name, station_name=self.station_name, modality=self.modality,
                         scale=self.scale, max_instances_per_series=self.max_instances_per_series, **kwargs)

    def _interval(self) -> float:
        return 3600.0 / self.studies_per_hour

    def start_schedule(self, start: datetime) -> None:
        """First study due at a random point of the first interval after ``start`` (never, if rate is 0)."""
        if self.studies_per_hour <= 0:
            self.next_due = None
            return
        self.next_due = start + timedelta(seconds=self._interval() * mock_rng().random())

    def advance(self) -> None:
        """Schedule the next study: mean interval 3600/studies_per_hour, jittered by +-50%."""
        if self.next_due is not None:
            self.next_due += timedelta(seconds=self._interval() * mock_rng().uniform(0.5, 1.5))

    def due_studies(self, now: datetime) -> list[MockStudy]:
        """Generate every study due at or before ``now`` (the schedule starts on the first call)."""
        if self.next_due is None:
            self.start_schedule(now)
        studies = []
        while self.next_due is not None and self.next_due <= now:
            studies.append(self.gen_study(self.next_due.replace(microsecond=0)))
            self.advance()
        return studies

    def poll(self, dest: Any = None, now: datetime | None = None, workers: int = 1) -> list[MockStudy]:
        """If studies are due by the schedule, generate them and put each instance (with file bytes) to ``dest``."""
        studies = self.due_studies(now or datetime.now())
        for study in studies:
            push_study(study, dest, workers)
        return studies

    def changes(self, now: datetime | None = None, **kwargs: Any) -> list[Event]:
        """STUDY_ADDED events (data: the MockStudy) for the studies due by ``now`` (default: the wall clock)."""
        return [Event(event_type=EventType.STUDY_ADDED, source_name=self.name, data=s)
                for s in self.due_studies(now or datetime.now())]


def _station_name(service: str, index: int) -> str:
    stem = re.sub(r"[^A-Z0-9]", "", service.upper())[:11] or "MOCK"
    return f"{stem}-{index + 1}"


@define(kw_only=True)
class MockService:
    """A set of similar devices of one modality; ``studies_per_hour`` is per device."""

    site_name: str = "Mock Facility"
    name: str = "Imaging Service"
    modality: str = "CT"
    num_devices: int = 1
    studies_per_hour: float = 6.0
    scale: float | None = None  # None: the site's
    max_instances_per_series: int | None = None
    devices: list[MockDevice] = field(init=False, factory=list, repr=False)

    def __attrs_post_init__(self) -> None:
        self.setup_devices()

    def setup_devices(self) -> None:
        """(Re)build the devices, with station names derived from the service name."""
        self.devices = [
            MockDevice(name=f"{self.name} {i + 1}", site_name=self.site_name, station_name=_station_name(self.name, i),
                       modality=self.modality, studies_per_hour=self.studies_per_hour, scale=self.scale or 1.0,
                       max_instances_per_series=self.max_instances_per_series)
            for i in range(self.num_devices)
        ]


@define(kw_only=True)
class MockSite(Endpoint, Observable):
    """A set of imaging services; ``run(pacs)`` generates their studies into an endpoint or folder.

    Fields:
        services: Imaging services: [{name, modality, devices, studies_per_hour}].
        scale: Multiply instance counts per series for every device.
        max_instances_per_series: Cap on the instances of any series, for every device.
    """

    event_types = (EventType.STUDY_ADDED,)
    name: str = "Mock Facility"
    services: list[MockService] = field(factory=list)
    scale: float = 1.0
    max_instances_per_series: int | None = None

    def __attrs_post_init__(self) -> None:
        for svc in self.services:
            svc.site_name = self.name
            svc.scale = self.scale if svc.scale is None else svc.scale
            if svc.max_instances_per_series is None:
                svc.max_instances_per_series = self.max_instances_per_series
            svc.setup_devices()

    class Factory:
        """Build sites from a description: {name, scale?, max_instances_per_series?, services: [{...}]}."""

        @classmethod
        def create(cls, desc: Mapping[str, Any]) -> MockSite:
            """One site from a dict (service keys: name, modality, devices | num_devices, studies_per_hour)."""
            if not isinstance(desc, Mapping):
                raise ConfigError("a mock site description must be a mapping with 'name' and 'services'")
            known = {"name", "services", "scale", "max_instances_per_series"}
            unknown = sorted(set(desc) - known)
            if unknown:
                raise ConfigError(f"mock site: unknown key {unknown[0]!r}; allowed keys: {', '.join(sorted(known))}")
            site = MockSite(name=str(desc.get("name", "Mock Facility")), scale=float(desc.get("scale", 1.0)),
                            max_instances_per_series=desc.get("max_instances_per_series"))
            for svc in desc.get("services") or []:
                svc = dict(svc)
                devices = svc.pop("devices", svc.pop("num_devices", 1))
                try:
                    site.add_service(devices=int(devices), **svc)
                except TypeError as exc:
                    raise ConfigError(f"mock site {site.name!r}: bad service description: {exc}") from exc
            return site

        @classmethod
        def create_many(cls, desc: Any) -> list[MockSite]:
            """Sites from a dict (one site) or a list of site dicts."""
            items = [desc] if isinstance(desc, Mapping) else list(desc or [])
            return [cls.create(d) for d in items]

    def add_service(self, name: str, modality: str, devices: int = 1, studies_per_hour: float = 6.0,
                    **kwargs: Any) -> MockService:
        """Add a service of ``devices`` devices (scale and instance cap default to the site's)."""
        kwargs.setdefault("scale", self.scale)
        kwargs.setdefault("max_instances_per_series", self.max_instances_per_series)
        svc = MockService(site_name=self.name, name=name, modality=str(modality).upper(), num_devices=devices,
                          studies_per_hour=studies_per_hour, **kwargs)
        self.services.append(svc)
        return svc

    def devices(self) -> list[MockDevice]:
        """Every device of every service."""
        return [d for svc in self.services for d in svc.devices]

    def check(self) -> bool:
        return bool(self.devices())

    def changes(self, now: datetime | None = None, **kwargs: Any) -> list[Event]:
        """STUDY_ADDED events from every device, due by ``now`` (default: the wall clock)."""
        return [e for d in self.devices() for e in d.changes(now)]

    def run(self, pacs: Any, studies: int | None = None, duration: float | None = None, speed: float = 1.0,
            start: datetime | None = None, workers: int = 1, on_study: StudyCallback | None = None,
            clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
        """Generate studies into ``pacs`` until ``studies`` are made or ``duration`` simulated seconds pass.

        ``speed`` accelerates simulated time (math.inf: no waiting). Returns counts and the accession numbers.
        """
        if not speed > 0:
            raise ValidationError("mock run: speed must be > 0")
        if math.isinf(speed) and studies is None and duration is None:
            raise ValidationError("mock run: an infinite speed needs a bound (studies or duration)")
        devices = self.devices()
        if not devices:
            raise ValidationError(f"mock site {self.name!r} has no devices; add a service first")
        start = start or datetime.now().replace(microsecond=0)
        end = None if duration is None else start + timedelta(seconds=duration)
        for dev in devices:
            dev.start_schedule(start)
        sink = as_sink(pacs)
        counts: dict[str, Any] = {"studies": 0, "series": 0, "instances": 0, "failed": 0, "accessions": [],
                                  "failures": []}
        t0 = clock()
        sim_now = start
        while studies is None or counts["studies"] < studies:
            pending = [(d.next_due, i) for i, d in enumerate(devices) if d.next_due is not None]
            if not pending:
                break
            due, index = min(pending)
            if end is not None and due > end:
                sim_now = end
                break
            wait = 0.0 if math.isinf(speed) else (due - start).total_seconds() / speed - (clock() - t0)
            if wait > 0:
                sleep(wait)
            sim_now = due
            dev = devices[index]
            study = dev.gen_study(due.replace(microsecond=0))
            dev.advance()
            result = push_study(study, sink, workers)
            counts["studies"] += 1
            counts["series"] += len(study.children)
            counts["instances"] += result.done
            counts["failed"] += len(result.failed)
            counts["failures"].extend(result.failed[:5])
            counts["accessions"].append(study.tags["AccessionNumber"])
            if on_study is not None:
                on_study(study, result)
        counts["sim_seconds"] = (sim_now - start).total_seconds()
        counts["elapsed"] = clock() - t0
        return counts
