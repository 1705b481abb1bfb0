"""ProxiedDicom first-hour stumbles, against the real Orthanc pair: the proxy's AE title discovered from /system,
``check`` proving (or explaining) the move destination, and C-MOVEs run as Orthanc jobs with a per-study timeout."""

from __future__ import annotations

import io
import time

import pytest

from diana_core import load_services
from diana_core.dicom import DicomLevel
from diana_core.errors import DianaError, EndpointUnavailable
from diana_orthanc import Orthanc
from diana_orthanc.testdata import ct_dataset
from diana_proxied import ProxiedDicom


def orthanc(server) -> Orthanc:
    return Orthanc(**{k: v for k, v in server.service_desc().items() if k != "ctype"})


def proxied_without_aet(server, **extra) -> ProxiedDicom:
    desc = {k: v for k, v in server.service_desc().items() if k != "aet"}
    return load_services({"pacs": {"ctype": "ProxiedDicom", "proxy_desc": desc, "proxy_domain": "remote",
                                   **extra}})["pacs"]


def upload_study(remote: Orthanc, run: str, n: int) -> str:
    """``n`` instances of one CT study on the remote; returns its StudyInstanceUID."""
    blobs = []
    for i in range(n):
        buf = io.BytesIO()
        ct_dataset(i, run=run).save_as(buf, enforce_file_format=True)
        blobs.append(buf.getvalue())
    result = remote.put_many(blobs, workers=4)
    assert result.done == n, result.failed
    return str(ct_dataset(0, run=run).StudyInstanceUID)


def test_aet_discovered_from_the_proxy_and_retrieve_works(clean_orthancs):
    proxied = proxied_without_aet(clean_orthancs.local)
    assert "aet" not in proxied.proxy_desc
    assert proxied.move_aet() == clean_orthancs.local.aet == "LOCAL"  # not Orthanc's default "ORTHANC"
    study = upload_study(orthanc(clean_orthancs.remote), "aet", 2)
    found = proxied.find({"StudyInstanceUID": study}, retrieve=True)
    assert found and found[0].meta["Retrieved"] is True
    local = orthanc(clean_orthancs.local)
    assert local.gateway.statistics()["CountInstances"] == 2


def test_check_proves_the_move_destination_or_says_what_to_configure(clean_orthancs):
    good = proxied_without_aet(clean_orthancs.local)
    ok, detail = good.diagnose()
    assert ok, detail
    assert good.check() is True
    # a configured AE title the proxy does not answer to: the retrieves would go elsewhere (or nowhere)
    wrong = proxied_without_aet(clean_orthancs.local)
    wrong.proxy_desc["aet"] = "DIANA"
    ok, detail = wrong.diagnose()
    assert not ok
    assert "'DIANA'" in detail and "'LOCAL'" in detail and "aet" in detail
    # a remote that does not know the proxy at all: the exact entry to add is named
    lost = proxied_without_aet(clean_orthancs.local, proxy_domain="nowhere")
    ok, detail = lost.diagnose()
    assert not ok and "no modality 'nowhere'" in detail


def test_large_retrieve_goes_through_an_async_job_with_a_per_study_timeout(clean_orthancs):
    """With a 0.3 s HTTP timeout a synchronous C-MOVE of 300 instances times out; the job survives it."""
    remote = orthanc(clean_orthancs.remote)
    study = upload_study(remote, "async", 300)
    desc = {k: v for k, v in clean_orthancs.local.service_desc().items() if k != "aet"}
    proxied = load_services({"pacs": {"ctype": "ProxiedDicom", "proxy_desc": {**desc, "timeout": 0.3},
                                      "proxy_domain": "remote", "retrieve_timeout": 120}})["pacs"]
    progress: list[int] = []
    proxied.progress = progress.append
    started = time.monotonic()
    found = proxied.find({"StudyInstanceUID": study}, level=DicomLevel.STUDIES, retrieve=True)
    elapsed = time.monotonic() - started
    assert found[0].meta["Retrieved"] is True
    local = orthanc(clean_orthancs.local)
    assert local.gateway.statistics()["CountInstances"] == 300
    jobs = [local.gateway.request("GET", f"jobs/{j}").json() for j in local.gateway.request("GET", "jobs").json()]
    moves = [j for j in jobs if j["Type"] == "DicomMoveScu" and j["State"] == "Success"]
    assert moves, "the retrieve did not run as an Orthanc job"
    assert progress and progress[-1] == 100
    assert elapsed > 0.3  # longer than one request may take: only the job made it possible


def test_per_study_timeout_cancels_the_job(clean_orthancs):
    remote = orthanc(clean_orthancs.remote)
    study = upload_study(remote, "slow", 200)
    proxied = proxied_without_aet(clean_orthancs.local, retrieve_timeout=0.01)
    with pytest.raises(EndpointUnavailable, match=r"did not finish within 0.01 s .*cancelled"):
        proxied.find({"StudyInstanceUID": study}, retrieve=True)


def test_failed_move_says_what_the_remote_must_know(clean_orthancs):
    study = upload_study(orthanc(clean_orthancs.remote), "unknown-aet", 1)
    wrong = proxied_without_aet(clean_orthancs.local)
    wrong.proxy_desc["aet"] = "NOBODY"  # the remote knows no such AE: its C-MOVE job fails
    with pytest.raises(DianaError, match=r"0xC000.*'remote' lists AE title 'NOBODY' \(the proxy\) as a move "
                                         r"destination"):
        wrong.find({"StudyInstanceUID": study}, retrieve=True)
