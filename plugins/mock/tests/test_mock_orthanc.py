"""A mock site pushed into a REAL Orthanc is accepted in full (counted through its REST /statistics)."""

from __future__ import annotations

import math
from datetime import datetime

import requests

from diana_core.services import build_endpoint
from diana_mock import MockSite, MockStudy, reset_mock_seed

START = datetime(2024, 3, 5, 8, 0, 0)


def statistics(server) -> dict:
    resp = requests.get(f"{server.url}/statistics", auth=(server.user, server.password), timeout=30)
    resp.raise_for_status()
    return resp.json()


def test_mock_site_into_real_orthanc_is_accepted_in_full(clean_orthancs, orthanc_local):
    reset_mock_seed("orthanc")
    site = MockSite.Factory.create({
        "name": "Orthanc Hospital",
        "max_instances_per_series": 25,
        "services": [
            {"name": "CT", "modality": "CT", "devices": 1, "studies_per_hour": 6},
            {"name": "MR", "modality": "MR", "devices": 1, "studies_per_hour": 6},
            {"name": "CR", "modality": "CR", "devices": 1, "studies_per_hour": 6},
            {"name": "US", "modality": "US", "devices": 1, "studies_per_hour": 6},
        ],
    })
    made: list[MockStudy] = []
    pacs = build_endpoint("Orthanc", {k: v for k, v in orthanc_local.service_desc().items() if k != "ctype"},
                          service_name="pacs")
    counts = site.run(pacs, studies=6, speed=math.inf, start=START, workers=4,
                      on_study=lambda study, result: made.append(study))
    expected = sum(len(s.instances()) for s in made)
    assert counts["failed"] == 0, counts["failures"]
    assert counts["studies"] == 6 and counts["instances"] == expected > 20
    assert {s.modality for s in made} >= {"CT", "MR"}
    stats = statistics(orthanc_local)
    assert stats["CountStudies"] == 6
    assert stats["CountSeries"] == sum(len(s.children) for s in made)
    assert stats["CountInstances"] == expected
    # Orthanc's ids are the ones Diana predicts for the mock tree
    study = made[0]
    auth = (orthanc_local.user, orthanc_local.password)
    resp = requests.get(f"{orthanc_local.url}/studies/{study.oid()}", auth=auth, timeout=30)
    assert resp.status_code == 200
    assert resp.json()["MainDicomTags"]["AccessionNumber"] == study.tags["AccessionNumber"]
    inst = study.instances()[-1]
    resp = requests.get(f"{orthanc_local.url}/instances/{inst.oid()}/file", auth=auth, timeout=30)
    assert resp.status_code == 200 and resp.content == inst.gen_file()


def test_one_full_size_ct_study_into_real_orthanc(clean_orthancs, orthanc_local):
    reset_mock_seed("big-ct")
    study = MockStudy(study_datetime=START, modality="CT")  # full size: volumes of 30-200 images
    n = len(study.instances())
    assert n > 60
    pacs = build_endpoint("Orthanc", {k: v for k, v in orthanc_local.service_desc().items() if k != "ctype"},
                          service_name="pacs")
    from diana_mock.site import push_study

    result = push_study(study, pacs, workers=4)
    assert result.failed == [] and result.done == n
    assert statistics(orthanc_local)["CountInstances"] == n


def test_cli_mock_into_an_orthanc_named_in_a_service_file(clean_orthancs, orthanc_local, tmp_path):
    import json

    from click.testing import CliRunner

    from diana_core.cli.app import cli

    services = tmp_path / "services.json"
    services.write_text(json.dumps({"pacs": orthanc_local.service_desc()}))
    res = CliRunner().invoke(cli, ["-s", str(services), "--json", "mock", "--dest", "pacs", "--studies", "3",
                                   "--speed", "inf", "--seed", "svc", "--max-instances", "4", "-w", "2"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["studies"] == 3 and summary["failed"] == 0
    stats = statistics(orthanc_local)
    assert stats["CountStudies"] == 3 and stats["CountInstances"] == summary["instances"] > 3
