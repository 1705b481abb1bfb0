"""Routing rules on a real receiver: dcmtk's storescu sends a mixed CT/MR/US/SR set (pydicom's corpus and generated
files) from several AE titles into ``diana watch -R`` (a subprocess); every file lands exactly at the destinations its
rules name (counted by SOP UID), a broken destination of a rule does not hold back its others, unrouted events are
counted, per-rule counts reach /metrics, and ``diana routes test`` says what the daemon did."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from diana_core.testing.waiting import wait_for
from diana_dimse.testing import free_port, wait_port

CORPUS = Path(pydicom.__file__).parent / "data" / "test_files"
STORESCU = "/usr/bin/storescu"
DIANA = [sys.executable, "-m", "diana_core"]

ROUTES = """
routes:
  - name: lung
    source: recv
    when: {Modality: CT, StudyDescription: "~(?i)chest|thorax", CallingAET: [CT1, CT2]}
    dest: [lung_a, broken, lung_b]
  - name: neuro
    source: recv
    when: {Modality: MR, CalledAET: DIANA}
    dest: neuro
  - name: reports
    source: recv
    when: {SOPClassUID: "~^1\\\\.2\\\\.840\\\\.10008\\\\.5\\\\.1\\\\.4\\\\.1\\\\.1\\\\.88\\\\."}
    dest: reports
  - name: ct-studies
    source: recv
    on: stable-study
    when: {Modality: CT}
    dest: studies
  - name: mr-series
    source: recv
    on: stable-series
    when: {Modality: MR}
    dest: series
"""


def variant(src: str, out: Path, study: str, **changes: str) -> Path:
    """A copy of a corpus file as a new instance (new SOP UID) of ``study`` with some header values changed."""
    ds = pydicom.dcmread(CORPUS / src)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, generate_uid()
    for key, value in changes.items():
        setattr(ds, key, value)
    ds.save_as(out, enforce_file_format=True)
    return out


def mixed_set(folder: Path) -> dict[str, list[Path]]:
    """Files per calling AE title: CT chest/head, MR, US, SR; corpus files as they are and generated ones."""
    folder.mkdir()
    chest, head, mr, us, other = (generate_uid() for _ in range(5))
    us_sop = "1.2.840.10008.5.1.4.1.1.6.1"
    return {
        "CT1": [variant("CT_small.dcm", folder / f"chest{i}.dcm", chest, StudyDescription="CT CHEST") for i in range(3)]
        + [variant("CT_small.dcm", folder / f"head{i}.dcm", head, StudyDescription="CT HEAD") for i in range(2)]
        + [CORPUS / "CT_small.dcm"],
        "MR1": [CORPUS / "MR_small.dcm", *(variant("MR_small.dcm", folder / f"mr{i}.dcm", mr) for i in range(2)),
                # the corpus' SRs lack a PatientID, which a DcmDir needs to name the file
                variant("test-SR.dcm", folder / "sr1.dcm", generate_uid(), PatientID="SR1"),
                variant("reportsi.dcm", folder / "sr2.dcm", generate_uid(), PatientID="SR2"),
                variant("CT_small.dcm", folder / "us.dcm", us, Modality="US", SOPClassUID=us_sop)],
        "XA9": [variant("CT_small.dcm", folder / "thorax.dcm", other, StudyDescription="Thorax")],
    }


def sops(folder: Path) -> list[str]:
    return [str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in sorted(folder.rglob("*.dcm"))]


def ledger_rows(path: Path) -> list[tuple[str, str, str]]:
    if not path.exists():
        return []
    try:
        with sqlite3.connect(path) as db:
            return list(db.execute("SELECT rule, dest, item FROM delivered"))
    except sqlite3.OperationalError:  # the daemon is creating it
        return []


def routes_test(tmp: Path, by_aet: dict[str, list[Path]]) -> dict[str, set[str]]:
    """SOP UID -> the rules `diana routes test` says the file takes at instance level (one run per calling AE)."""
    runs = [subprocess.Popen([*DIANA, "--json", "-s", tmp / "services.yml", "routes", "test", tmp / "routes.yml",
                              *files, "--calling-aet", aet, "--called-aet", "DIANA"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for aet, files in by_aet.items()]
    out: dict[str, set[str]] = {}
    for run in runs:
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
        for row in json.loads(stdout):
            if row["level"] == "instance":
                sop = str(pydicom.dcmread(row["file"], stop_before_pixels=True).SOPInstanceUID)
                out[sop] = {r["rule"] for r in row["rules"]}
    return out


@pytest.mark.parametrize("engine", ["pynetdicom", "dcmtk"])
def test_a_receiver_routes_each_file_to_exactly_its_rules_destinations(tmp_path, engine):
    """Both receiver engines give the same routing: the same SOP UIDs at each destination, the same ledger."""
    port, status_port, closed = free_port(), free_port(), free_port()
    dests = {name: tmp_path / name for name in ("lung_a", "lung_b", "neuro", "reports", "studies", "series")}
    services = {"recv": {"ctype": "DicomReceiver", "path": str(tmp_path / "inbox"), "aet": "DIANA", "port": port,
                         "stable_age": 1.0, "polling_interval": 0.2, "engine": engine},
                "broken": {"ctype": "DicomNode", "host": "127.0.0.1", "port": closed, "aet": "NOBODY",
                           "timeout": 2},
                **{name: {"ctype": "DcmDir", "path": str(path)} for name, path in dests.items()}}
    services["studies"]["study_zips"] = True
    (tmp_path / "services.yml").write_text(json.dumps(services))
    (tmp_path / "routes.yml").write_text(ROUTES)
    check = subprocess.run([*DIANA, "-s", tmp_path / "services.yml", "routes", "check", tmp_path / "routes.yml"],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "5 route(s), no problems" in check.stdout, check.stdout + check.stderr

    by_aet = mixed_set(tmp_path / "src")
    expected = routes_test(tmp_path, by_aet)  # SOP -> rules: the daemon's evaluator, run by `diana routes test`
    per_rule = {rule: {s for s, rules in expected.items() if rule in rules} for rule in ("lung", "neuro", "reports")}
    # what the rules mean, independently of the evaluator: 3 chest CTs from CT1, 3 MR, 2 SR
    assert len(per_rule["lung"]) == 3 and len(per_rule["neuro"]) == 3 and len(per_rule["reports"]) == 2
    unrouted_instances = sum(1 for rules in expected.values() if not rules)
    assert unrouted_instances == 5  # 2 CT head + CT_small + the thorax CT from XA9 + the US

    ledger = tmp_path / "ledger.sqlite"
    daemon = subprocess.Popen(
        [*DIANA, "--json", "-s", tmp_path / "services.yml", "watch", "-R", tmp_path / "routes.yml",
         "--ledger", ledger, "--deadletter", tmp_path / "dead.jsonl", "--retry-delays", "0.2,0.2",
         "--status-port", str(status_port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, daemon, timeout=30)
        for aet, files in by_aet.items():
            subprocess.run([STORESCU, "-aet", aet, "-aec", "DIANA", "127.0.0.1", str(port), *map(str, files)],
                           check=True, capture_output=True, timeout=120)
        headers = [pydicom.dcmread(p, stop_before_pixels=True) for files in by_aet.values() for p in files]
        ct_studies = {str(ds.StudyInstanceUID) for ds in headers if ds.Modality == "CT"}
        mr_series = {str(ds.SeriesInstanceUID) for ds in headers if ds.Modality == "MR"}
        # ledger rows: lung x 2 good destinations, neuro, reports, CT studies, MR series
        wanted = 2 * 3 + 3 + 2 + len(ct_studies) + len(mr_series)
        try:
            wait_for(lambda: len(ledger_rows(ledger)) >= wanted, what="every delivery in the ledger")
        except AssertionError:
            daemon.kill()
            raise AssertionError(f"{Counter(r[:2] for r in ledger_rows(ledger))}, {daemon.communicate()}") from None

        def dead_in_metrics() -> str | None:
            text = urllib.request.urlopen(f"http://127.0.0.1:{status_port}/metrics", timeout=5).read().decode()
            return text if 'diana_route_dead_total{route="lung"} 3.0' in text else None

        metrics = wait_for(dead_in_metrics, what="the broken destination's dead letters in /metrics")
        status = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{status_port}/status.json", timeout=5).read())
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 3, err[-2000:]  # dead letters: the broken destination
    summary = json.loads(out.strip().splitlines()[-1])

    got = {name: sops(path) for name, path in dests.items() if name != "studies"}
    assert set(got["series"]) == per_rule["neuro"]  # the MR series, each routed whole once stable
    for name, sop_list in got.items():
        assert len(sop_list) == len(set(sop_list)), f"{name} holds a duplicate"
    assert set(got["lung_a"]) == set(got["lung_b"]) == per_rule["lung"]
    assert set(got["neuro"]) == per_rule["neuro"]
    assert set(got["reports"]) == per_rule["reports"]
    rows = ledger_rows(ledger)
    assert Counter((rule, dest) for rule, dest, _ in rows) == {
        ("lung", "lung_a"): 3, ("lung", "lung_b"): 3, ("neuro", "neuro"): 3, ("reports", "reports"): 2,
        ("ct-studies", "studies"): len(ct_studies), ("mr-series", "series"): 3}
    assert len(mr_series) == 3  # MR_small and the two generated MRs each have their own series
    zips = sorted((tmp_path / "studies").rglob("*.zip"))
    assert len(zips) == len(ct_studies) == 4

    routes = {row["route"]: row for row in summary["routes"]}
    assert routes["lung"]["matched"] == 3 and routes["lung"]["delivered"] == 6 and routes["lung"]["dead"] == 3
    assert routes["lung"]["retried"] == 6  # 2 retries of each of the 3 deliveries to the broken destination
    assert routes["neuro"]["dead"] == routes["reports"]["dead"] == 0
    non_ct_studies = len({str(ds.StudyInstanceUID) for ds in headers}) - len(ct_studies)
    non_mr_series = len({str(ds.SeriesInstanceUID) for ds in headers}) - len(mr_series)
    assert summary["unrouted"] == unrouted_instances + non_ct_studies + non_mr_series
    assert 'diana_route_retried_total{route="lung"} 6.0' in metrics
    page = {row["route"]: row for row in status["routes"]}
    assert (page["lung"]["dead"], page["lung"]["delivered"], page["neuro"]["delivered"]) == (3, 6, 3)
    assert "diana_events_unrouted_total " in metrics
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert {(r["trigger"], r["route"]["rule"]) for r in dead} == {("lung->broken", "lung")} and len(dead) == 3
    assert os.path.getsize(ledger) > 0
