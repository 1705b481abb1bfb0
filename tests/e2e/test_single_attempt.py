"""One short attempt per try (#24): inside ``diana_core.delivery.single_attempt`` (how the watcher runs every
route) the Orthanc and DICOMweb clients make one request and skip their own retry backoff, so a down destination
costs the loop milliseconds, not the ~20 s of the Orthanc upload retries. The destination is a real closed port."""

from __future__ import annotations

import time

import pytest

from diana_core.delivery import single_attempt
from diana_core.errors import EndpointUnavailable
from diana_dicomweb import DicomWeb
from diana_orthanc import Orthanc
from diana_orthanc.testdata import ct_bytes
from diana_orthanc.testing import free_port


def timed_failure(put) -> float:
    started = time.monotonic()
    with pytest.raises(EndpointUnavailable):
        put()
    return time.monotonic() - started


def test_orthanc_upload_to_a_down_server_is_one_quick_try_inside_single_attempt():
    dest = Orthanc(name="down", host="127.0.0.1", port=free_port(), user="u", password="p")
    data = ct_bytes(0, run="single-attempt")
    with single_attempt(3.0):
        took = timed_failure(lambda: dest.put(data))
    assert took < 1.0, f"{took:.1f} s: the client's own retries ran"


def test_dicomweb_store_to_a_down_server_is_one_quick_try_inside_single_attempt():
    dest = DicomWeb(name="down", url=f"http://127.0.0.1:{free_port()}/dicom-web", retries=3)
    data = ct_bytes(0, run="single-attempt")
    with single_attempt(3.0):
        quick = timed_failure(lambda: dest.put(data))
    own = timed_failure(lambda: dest.put(data))  # outside: the session's backoff (0.6 + 1.2 s)
    assert quick < 0.5 <= own, (quick, own)
