"""One engine, one result: every pseudonymizing path gives element-for-element the same files (real Orthancs).

Paths: a pseudonymizing DcmDir; ``Orthanc.anonymize`` (relayed through the local engine); the Collector from an
Orthanc into another Orthanc (relay folder); the Collector from a ProxiedDicom (C-MOVE) into a DcmDir;
``upload_item --anonymize`` into an Orthanc. Each output is compared with the DcmDir's tag by tag, nested
sequences and file meta included.
"""

from __future__ import annotations

import io
import os

import pydicom
import pytest
import requests

from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel
from diana_core.pseudonym import Pseudonymizer
from diana_core.usecases.collector import Collector
from diana_core.usecases.routes import upload_item
from diana_dcmdir import DcmDir
from diana_orthanc import Orthanc
from diana_proxied import ProxiedDicom

from .phi import ACCESSION, SECRETS, hard_study


def flat(ds, prefix: str = "") -> dict[str, tuple[str, str]]:
    """Every element (file meta and nested items too) as path -> (VR, value)."""
    out: dict[str, tuple[str, str]] = {}
    for elem in ds:
        key = f"{prefix}{elem.tag}"
        if elem.VR == "SQ":
            out[key] = ("SQ", str(len(elem.value)))
            for n, item in enumerate(elem.value):
                out.update(flat(item, f"{key}[{n}]."))
        else:
            out[key] = (elem.VR, repr(elem.value))
    meta = getattr(ds, "file_meta", None)
    if meta is not None and not prefix:
        out.update({f"meta{e.tag}": (e.VR, repr(e.value)) for e in meta})
    return out


def by_sop(blobs) -> dict[str, dict[str, tuple[str, str]]]:
    out = {}
    for blob in blobs:
        ds = pydicom.dcmread(io.BytesIO(blob))
        out[str(ds.SOPInstanceUID)] = flat(ds)
    return out


def orthanc_files(server) -> list[bytes]:
    session = requests.Session()
    session.auth = (server.user, server.password)
    return [session.get(f"{server.url}/instances/{i}/file").content
            for i in session.get(f"{server.url}/instances").json()]


def endpoint(server, name: str) -> Orthanc:
    return Orthanc(name=name, **{k: v for k, v in server.service_desc().items() if k != "ctype"})


def test_every_path_gives_the_same_files(clean_orthancs, tmp_path):
    study = hard_study(3, "japanese")  # ISO 2022 IR 87 through every path
    pz = Pseudonymizer(key="paths-e2e-key")
    local, remote = clean_orthancs.local, clean_orthancs.remote

    # 1. the engine itself: a pseudonymizing DcmDir
    reference_dir = DcmDir(path=str(tmp_path / "dcmdir"))
    for blob in study["files"]:
        reference_dir.put_pseudonymized(Dixel(file=blob), pz)
    reference = by_sop(open(p, "rb").read() for p in reference_dir.files())
    assert len(reference) == 3
    text = repr(reference)
    for secret in SECRETS:
        assert secret not in text, secret

    # 2. Orthanc.anonymize on the source Orthanc (download, local engine, upload)
    orthanc = endpoint(local, "local")
    for blob in study["files"]:
        orthanc.put(blob)
    [original_oid] = orthanc.inventory()
    new = orthanc.anonymize(original_oid, level=DicomLevel.STUDIES, pseudonymizer=pz)
    assert new.oid() != original_oid
    orthanc.delete(original_oid, level=DicomLevel.STUDIES)
    assert by_sop(orthanc_files(local)) == reference

    # 3. the Collector, Orthanc -> Orthanc (a relay folder in the job folder)
    local.reset()
    for blob in study["files"]:
        orthanc.put(blob)
    result = Collector(pseudonymizer=pz).run("paths", [ACCESSION], orthanc, None, endpoint(remote, "research"),
                                             anonymize=True, job_dir=tmp_path / "job-orthanc")
    assert result.ok and result.done == 1 and result.instances == 3
    assert by_sop(orthanc_files(remote)) == reference
    assert len(orthanc.inventory()) == 1, "no pseudonymized copy was made on the source"

    # 4. the Collector from a ProxiedDicom (C-MOVE from the remote PACS) into a plain DcmDir
    local.reset()
    remote.reset()
    for blob in study["files"]:
        endpoint(remote, "pacs").put(blob)
    proxied = ProxiedDicom(name="hospital", proxy_desc=local.service_desc(), proxy_domain="remote")
    result = Collector(pseudonymizer=pz).run("paths", [ACCESSION], proxied, None, DcmDir(path=str(tmp_path / "px")),
                                             anonymize=True, job_dir=tmp_path / "job-proxied")
    assert result.ok and result.instances == 3
    assert by_sop(open(p, "rb").read() for p in DcmDir(path=str(tmp_path / "px")).files()) == reference
    assert orthanc.inventory() == [], "the proxy keeps nothing"

    # 5. upload_item --anonymize, file by file, into an Orthanc
    remote.reset()
    for n, blob in enumerate(study["files"]):
        path = tmp_path / "incoming" / f"{n}.dcm"
        os.makedirs(path.parent, exist_ok=True)
        path.write_bytes(blob)
        upload_item(str(path), source=DcmDir(path=str(path.parent)), dest=endpoint(remote, "research"),
                    anonymize=True, pseudonymizer=pz)
    assert by_sop(orthanc_files(remote)) == reference


@pytest.mark.parametrize("profile", ["basic", "basic,retain-uids,retain-device-identity,clean-descriptors"])
def test_profiles_travel_with_the_plan_on_every_path(clean_orthancs, tmp_path, profile):
    """The Orthanc path applies the same profile as the folder path (the plan carries it)."""
    study = hard_study(2)
    pz = Pseudonymizer(key="paths-e2e-key", profile=profile)
    folder = DcmDir(path=str(tmp_path / "dcmdir"))
    for blob in study["files"]:
        folder.put_pseudonymized(Dixel(file=blob), pz)
    reference = by_sop(open(p, "rb").read() for p in folder.files())
    orthanc = endpoint(clean_orthancs.local, "local")
    for blob in study["files"]:
        orthanc.put(blob)
    [oid] = orthanc.inventory()
    orthanc.anonymize(oid, level=DicomLevel.STUDIES, pseudonymizer=pz)
    orthanc.delete(oid, level=DicomLevel.STUDIES)
    assert by_sop(orthanc_files(clean_orthancs.local)) == reference
    one = next(iter(reference.values()))
    codes = {v[1] for k, v in one.items() if k.endswith("(0008,0100)") and "(0012,0064)" in k}
    assert "'113100'" in codes and ("'113110'" in codes) == ("retain-uids" in profile)
