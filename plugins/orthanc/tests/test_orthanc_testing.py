"""The real-Orthanc fixture layer itself: pair wiring, reset, missing binary, test corpus."""

from __future__ import annotations

import pytest
import requests

from diana_orthanc.testing import OrthancStartError, start_orthanc


def test_pair_is_wired_both_ways(orthanc_pair):
    for server, other in ((orthanc_pair.local, "remote"), (orthanc_pair.remote, "local")):
        sess = requests.Session()
        sess.auth = (server.user, server.password)
        assert sess.get(f"{server.url}/modalities", timeout=10).json() == [other]
        assert sess.get(f"{server.url}/peers", timeout=10).json() == [other]
        assert sess.post(f"{server.url}/modalities/{other}/echo", data="{}", timeout=10).status_code == 200
        assert requests.get(f"{server.url}/system", timeout=10).status_code == 401
    assert orthanc_pair.local.service_desc()["aet"] == "LOCAL" and orthanc_pair.remote.aet == "REMOTE"


def test_reset_empties_the_server(clean_orthancs, dicom_testfiles):
    server = clean_orthancs.local
    sess = requests.Session()
    sess.auth = (server.user, server.password)
    for path in dicom_testfiles:
        with open(path, "rb") as fh:
            assert sess.post(f"{server.url}/instances", data=fh.read(), timeout=10).status_code == 200
    server.reset()
    assert sess.get(f"{server.url}/instances", timeout=10).json() == []


def test_missing_binary_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("ORTHANC_BIN", str(tmp_path / "no-orthanc-here"))
    with pytest.raises(OrthancStartError, match="apt-get install orthanc"):
        start_orthanc(tmp_path, "never")
