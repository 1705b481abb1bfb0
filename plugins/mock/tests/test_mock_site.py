"""MockDevice/MockService/MockSite: factory, schedules, bounded and accelerated runs, destinations, CLI."""

from __future__ import annotations

import io
import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import pydicom
import pytest
from click.testing import CliRunner

from diana_core import EventType
from diana_core.cli.app import cli
from diana_core.embedded import MemoryEndpoint
from diana_core.errors import ConfigError
from diana_core.services import load_services
from diana_mock import MockDevice, MockService, MockSite, MockStudy, reset_mock_seed

START = datetime(2024, 3, 5, 8, 0, 0)
DESC = {
    "name": "General Hospital",
    "max_instances_per_series": 3,
    "services": [
        {"name": "Main CT", "modality": "CT", "devices": 2, "studies_per_hour": 6},
        {"name": "Neuro MR", "modality": "mr", "num_devices": 1, "studies_per_hour": 2},
        {"name": "Chest CR", "modality": "CR", "devices": 1, "studies_per_hour": 12},
    ],
}


class FakeClock:
    """Injectable clock: sleeping advances it instantly and records the requested waits."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def _seed() -> None:
    reset_mock_seed()


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def test_factory_creates_site_services_and_devices():
    site = MockSite.Factory.create(DESC)
    assert site.name == "General Hospital"
    assert [(s.name, s.modality, s.num_devices) for s in site.services] == [
        ("Main CT", "CT", 2), ("Neuro MR", "MR", 1), ("Chest CR", "CR", 1)]
    devices = site.devices()
    assert len(devices) == 4 and all(isinstance(d, MockDevice) for d in devices)
    assert {d.site_name for d in devices} == {"General Hospital"}
    stations = [d.station_name for d in devices]
    assert len(set(stations)) == 4 and all(len(s) <= 16 for s in stations)
    assert all(d.max_instances_per_series == 3 for d in devices)
    svc = site.add_service("Ultrasound", "us", devices=3, studies_per_hour=4)
    assert isinstance(svc, MockService) and len(site.devices()) == 7 and svc.devices[0].modality == "US"


def test_factory_rejects_bad_descriptions():
    with pytest.raises(ConfigError, match="colour"):
        MockSite.Factory.create({"name": "x", "colour": "red"})
    with pytest.raises(ConfigError, match="PET"):
        MockSite.Factory.create({"name": "x", "services": [{"name": "p", "modality": "PET"}]})
    with pytest.raises(ConfigError):
        MockSite.Factory.create({"name": "x", "services": [{"name": "no modality"}]})
    assert len(MockSite.Factory.create_many([DESC, {"name": "Other", "services": []}])) == 2


def test_ctypes_build_from_a_service_mapping():
    services = load_services({
        "site": {"ctype": "MockSite", "max_instances_per_series": 2,
                 "services": [{"name": "CT", "modality": "CT", "num_devices": 2}]},
        "dev": {"ctype": "MockDevice", "modality": "CR", "studies_per_hour": 60},
    })
    site, dev = services["site"], services["dev"]
    assert isinstance(site, MockSite) and len(site.devices()) == 2
    assert {d.site_name for d in site.devices()} == {"site"} and site.devices()[0].max_instances_per_series == 2
    assert isinstance(dev, MockDevice) and dev.modality == "CR" and dev.check()
    assert dev.asdict()["ctype"] == "MockDevice"


def test_run_bounded_by_studies_with_infinite_speed_never_sleeps():
    site = MockSite.Factory.create(DESC)
    clock = FakeClock()
    dest = MemoryEndpoint(name="pacs")
    counts = site.run(dest, studies=5, speed=math.inf, start=START, clock=clock, sleep=clock.sleep)
    assert counts["studies"] == 5 and len(counts["accessions"]) == 5 and counts["failed"] == 0
    assert clock.sleeps == []
    stored = list(dest._items.values())
    assert counts["instances"] == len(stored) > 5
    assert all(d.file and d.file[128:132] == b"DICM" for d in stored)
    assert {d.tags["AccessionNumber"] for d in stored} == set(counts["accessions"])


def test_run_refuses_unbounded_infinite_speed():
    from diana_core.errors import ValidationError

    site = MockSite.Factory.create(DESC)
    with pytest.raises(ValidationError, match="bound"):
        site.run(None, speed=math.inf)
    with pytest.raises(ValidationError, match="no devices"):
        MockSite(name="empty").run(None, studies=1)


def test_run_accelerated_waits_simulated_time_divided_by_speed():
    site = MockSite.Factory.create(DESC)
    clock = FakeClock()
    counts = site.run(None, studies=4, speed=600, start=START, clock=clock, sleep=clock.sleep)
    assert counts["studies"] == 4 and clock.sleeps
    assert sum(clock.sleeps) == pytest.approx(counts["sim_seconds"] / 600, rel=1e-6)
    assert counts["elapsed"] == pytest.approx(counts["sim_seconds"] / 600, rel=1e-6)


def test_run_bounded_by_duration_and_schedule_rate():
    site = MockSite(name="Rate")
    site.add_service("CR", "CR", devices=1, studies_per_hour=60, max_instances_per_series=1)
    made: list[MockStudy] = []
    counts = site.run(None, duration=3600, speed=math.inf, start=START, on_study=lambda s, r: made.append(s))
    assert 40 <= counts["studies"] <= 80  # mean interval 60 s, jittered
    times = [datetime.strptime(s.tags["StudyDate"] + s.tags["StudyTime"], "%Y%m%d%H%M%S") for s in made]
    assert times == sorted(times) and START <= times[0] and times[-1] <= START + timedelta(hours=1)
    assert counts["sim_seconds"] == 3600


def test_runs_repeat_with_the_same_seed():
    def once() -> list[str]:
        reset_mock_seed("repeat")
        return MockSite.Factory.create(DESC).run(None, studies=6, speed=math.inf, start=START)["accessions"]

    assert once() == once()


def test_device_poll_puts_due_studies_into_a_folder(tmp_path):
    dev = MockDevice(name="d", station_name="CR-9", modality="CR", studies_per_hour=3600, max_instances_per_series=1)
    dev.poll(tmp_path / "out", now=START)  # the first call starts the schedule
    studies = dev.poll(tmp_path / "out", now=START + timedelta(seconds=10))
    assert 5 <= len(studies) <= 20
    files = files_in(tmp_path / "out")
    assert len(files) == sum(len(s.instances()) for s in studies)
    ds = pydicom.dcmread(files[0])
    assert ds.StationName == "CR-9" and ds.Modality == "CR"
    study = dev.gen_study(START)
    assert study.tags["StudyDate"] == "20240305" and study.modality == "CR"


def test_device_changes_emit_study_events():
    dev = MockDevice(name="src", modality="US", studies_per_hour=3600, max_instances_per_series=1)
    dev.changes(now=START)  # the first call starts the schedule
    events = dev.changes(now=START + timedelta(seconds=5))
    assert 2 <= len(events) <= 10 and all(e.event_type == EventType.STUDY_ADDED and e.source_name == "src" for e in events)
    assert isinstance(events[0].data, MockStudy) and events[0].data.modality == "US"


def test_cli_writes_reproducible_files_and_summary(tmp_path):
    site_file = tmp_path / "site.yml"
    site_file.write_text(
        "name: CLI Hospital\nservices:\n  - {name: CT, modality: CT, devices: 1, studies_per_hour: 6}\n"
        "  - {name: CR, modality: CR, devices: 1, studies_per_hour: 6}\n")
    runner = CliRunner()
    args = ["--json", "mock", str(site_file), "--studies", "3", "--speed", "inf", "--seed", "s1",
            "--max-instances", "2", "--start", "2024-03-05T08:00"]
    out1, out2 = tmp_path / "a", tmp_path / "b"
    res1 = runner.invoke(cli, [*args, "--dest", str(out1)])
    assert res1.exit_code == 0, res1.output
    summary = json.loads(res1.stdout.strip().splitlines()[-1])
    assert summary["studies"] == 3 and summary["failed"] == 0 and summary["seed"] == "s1"
    assert "mock: study" in res1.stderr
    res2 = runner.invoke(cli, [*args, "--dest", str(out2)])
    assert res2.exit_code == 0, res2.output
    files1, files2 = files_in(out1), files_in(out2)
    assert len(files1) == summary["instances"] > 3
    assert [p.relative_to(out1) for p in files1] == [p.relative_to(out2) for p in files2]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(files1, files2))
    ds = pydicom.dcmread(io.BytesIO(files1[0].read_bytes()))
    assert ds.InstitutionName == "CLI Hospital" and ds.AccessionNumber in summary["accessions"]


def test_cli_default_site_and_text_summary(tmp_path):
    res = CliRunner().invoke(cli, ["mock", "--dest", str(tmp_path / "o"), "-n", "2", "--speed", "inf",
                                   "--max-instances", "1"])
    assert res.exit_code == 0, res.output
    assert "mock: seed" in res.stderr and "2 studies" in res.stdout
    assert files_in(tmp_path / "o")
