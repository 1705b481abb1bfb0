"""POST /instances through an Orthanc restart: 0.5 MB CT instances uploaded by 8 threads while the real server is
killed (SIGKILL) and started again on the same ports; every upload is retried with backoff until it is stored, once."""

from __future__ import annotations

import threading

import pytest

from diana_orthanc import Orthanc
from diana_orthanc.testdata import ct_bytes
from diana_orthanc.testing import new_credentials, orthanc_workdir
from tests.faults.helpers import Node, wait_for

N = 64


@pytest.fixture()
def node():
    with orthanc_workdir("diana-faults-upload-") as workdir:
        user, password = new_credentials()
        started = Node(workdir, "upload", "UPLOAD", user, password).start()
        try:
            yield started
        finally:
            started.stop()


def test_uploads_survive_a_restart_of_the_destination_orthanc(node):
    files = [ct_bytes(i, run="upload-restart", size=512) for i in range(N)]  # 0.5 MB each
    dest = Orthanc(name="dest", **{k: v for k, v in node.desc().items() if k != "ctype"})
    results = []
    upload = threading.Thread(target=lambda: results.append(dest.put_many(files, workers=8)))
    upload.start()
    wait_for(lambda: node.get("statistics")["CountInstances"] >= 4, what="the upload under way")
    node.restart(crash=True)  # kill -9: the 8 uploads in flight lose their connection
    upload.join(timeout=120)
    [result] = results
    assert result.failed == [], result.failed[:2]
    assert result.done + result.skipped == N
    assert node.get("statistics")["CountInstances"] == N
