"""Keywords are never swallowed (#24 defect 5, #30 item 1): the API reference's ``upload_item(...,
anonymizing=True)`` pseudonymizes, and an unknown keyword to a handler, to an endpoint's ``put`` or in a routes
file's options is a one-line error naming the known ones, with nothing uploaded. Real Orthanc, real folders."""

from __future__ import annotations

import json
import subprocess
import sys

import pydicom
import pytest
import requests

from diana_core import ConfigError
from diana_core.pseudonym import Pseudonymizer
from diana_core.usecases.routes import upload_item
from diana_dcmdir import DcmDir
from diana_orthanc import Orthanc
from diana_orthanc.testdata import write_small_ct


def orthanc(server) -> Orthanc:
    return Orthanc(name="research", **{k: v for k, v in server.service_desc().items() if k != "ctype"})


def stored_tags(server) -> list[dict]:
    session = requests.Session()
    session.auth = (server.user, server.password)
    return [session.get(f"{server.url}/instances/{i}/simplified-tags").json()
            for i in session.get(f"{server.url}/instances").json()]


@pytest.fixture
def incoming(tmp_path):
    folder = tmp_path / "incoming"
    ds = write_small_ct(folder / "one.dcm", "STRICTACC1", 1, patient_id="STRICTMRN", patient_name="STRICT^PATIENT")
    return folder, ds


def test_the_references_anonymizing_keyword_pseudonymizes_at_the_destination(clean_orthancs, incoming):
    folder, original = incoming
    dest = orthanc(clean_orthancs.local)
    upload_item(str(folder / "one.dcm"), DcmDir(path=str(folder)), dest, anonymizing=True)
    [tags] = stored_tags(clean_orthancs.local)
    assert tags["PatientName"] != "STRICT^PATIENT" and tags["PatientID"] != "STRICTMRN"
    assert tags["StudyInstanceUID"] != original.StudyInstanceUID
    assert tags["SOPInstanceUID"] != original.SOPInstanceUID
    assert tags["StudyInstanceUID"] == Pseudonymizer().remap_uid(original.StudyInstanceUID)
    assert tags["PatientIdentityRemoved"] == "YES"


def test_both_spellings_with_different_values_are_refused(clean_orthancs, incoming):
    folder, _ = incoming
    with pytest.raises(ConfigError, match="another spelling of anonymize"):
        upload_item(str(folder / "one.dcm"), DcmDir(path=str(folder)), orthanc(clean_orthancs.local),
                    anonymizing=True, anonymize=False)
    assert stored_tags(clean_orthancs.local) == []


def test_an_unknown_keyword_is_one_line_naming_the_known_ones_and_uploads_nothing(clean_orthancs, incoming):
    folder, _ = incoming
    dest = orthanc(clean_orthancs.local)
    with pytest.raises(ConfigError) as handler_error:
        upload_item(str(folder / "one.dcm"), DcmDir(path=str(folder)), dest, anonymise=True)
    message = str(handler_error.value)
    assert "\n" not in message and "anonymise" in message
    assert "anonymize" in message and "anonymizing" in message and "workers" in message  # dest.put's own too
    with pytest.raises(ConfigError, match=r"Orthanc 'research': put\(\): unknown keyword argument anonymizing; "
                                          r"known: workers$"):
        dest.put(str(folder / "one.dcm"), anonymizing=True)
    assert stored_tags(clean_orthancs.local) == []


def test_a_routes_file_with_an_unknown_option_is_refused_in_one_line_before_routing(clean_orthancs, incoming,
                                                                                       tmp_path):
    folder, _ = incoming
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"research": clean_orthancs.local.service_desc()}))
    routes = tmp_path / "routes.json"  # YAML is a superset of JSON
    routes.write_text(json.dumps([{"handler": "upload_item", "source": str(folder), "dest": "research",
                                   "options": {"anonymise": True}}]))
    proc = subprocess.run([sys.executable, "-m", "diana_core.cli", "-s", str(services), "watch", "-R", str(routes),
                           "--max-seconds", "3"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "anonymise" in lines[0] and "known:" in lines[0] and "anonymize" in lines[0], \
        proc.stderr
    assert "Traceback" not in proc.stderr
    assert stored_tags(clean_orthancs.local) == []

    routes.write_text(json.dumps([{"handler": "upload_item", "source": str(folder), "dest": "research",
                                   "anonymize": True}]))  # an option beside handler, not under options
    misplaced = subprocess.run([sys.executable, "-m", "diana_core.cli", "-s", str(services), "watch", "-R",
                                str(routes), "--max-seconds", "3"], capture_output=True, text=True, timeout=120)
    assert misplaced.returncode != 0 and "anonymize" in misplaced.stderr and "options" in misplaced.stderr
    assert len([line for line in misplaced.stderr.splitlines() if line.strip()]) == 1, misplaced.stderr
    assert stored_tags(clean_orthancs.local) == []
    assert pydicom.dcmread(folder / "one.dcm").PatientName == "STRICT^PATIENT"  # the source file is untouched
