"""Pseudonymizer: the replacement map every backend applies."""

import os
from datetime import date

import pytest

from diana_core.dicom import is_valid_uid, orthanc_id
from diana_core.errors import ConfigError
from diana_core.guid import GUIDMint
from diana_core.pseudonym import Pseudonymizer, key_id, shift_date, shift_datetime

TAGS = {"PatientName": "WOODSON^LISA^T", "PatientID": "42347658", "PatientBirthDate": "19730925",
        "PatientSex": "F", "AccessionNumber": "A1", "StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4",
        "SOPInstanceUID": "1.2.3.4.5", "StudyDate": "20240304", "StudyTime": "080000"}


def test_map_uses_guidmint_and_keyed_uids():
    rmap = Pseudonymizer().replacement_map(TAGS, "instances")
    sham = GUIDMint(os.environ["DIANA_PSEUDONYM_KEY"]).get_sham_id("WOODSON^LISA^T", dob=date(1973, 9, 25),
                                                                   gender="F")
    assert rmap["PatientID"] == sham.ID and rmap["PatientName"] == sham.dicom_name
    for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert is_valid_uid(rmap[key]) and rmap[key] != TAGS[key]
    assert rmap["AccessionNumber"] != "A1" and len(rmap["AccessionNumber"]) == 16


def test_real_birth_date_never_survives():
    # GUIDMint's shift for this patient happens to be 0 days: the map must still change the date
    assert GUIDMint().get_sham_id("WOODSON^LISA^T", dob="1973-09-25", gender="F").BirthDate == date(1973, 9, 25)
    assert Pseudonymizer().replacement_map(TAGS)["PatientBirthDate"] != "19730925"


def test_predicted_oid_and_key_and_diana_scheme():
    p = Pseudonymizer()
    rmap = p.replacement_map(TAGS)
    assert p.predicted_oid(TAGS) == orthanc_id(rmap["PatientID"], rmap["StudyInstanceUID"])
    assert Pseudonymizer(key="secret").replacement_map(TAGS)["PatientID"] != rmap["PatientID"]
    assert Pseudonymizer(uid_scheme="diana").replacement_map(TAGS)["StudyInstanceUID"].startswith(
        "1.2.826.0.1.3680043.10.43.")


def test_missing_birth_date_and_age_still_pseudonymizes_deterministically():
    tags = {"PatientID": "X1", "StudyInstanceUID": "1.2"}
    assert Pseudonymizer().replacement_map(tags) == Pseudonymizer().replacement_map(tags)


def test_date_shifts():
    from datetime import timedelta

    assert shift_date("20200101", timedelta(days=-1, seconds=10)) == "20191231"
    assert shift_datetime("20200101", "233000", timedelta(hours=1)) == ("20200102", "003000")
    assert shift_date("garbage", timedelta(days=1)) == ""


def test_no_key_no_pseudonyms_unless_unkeyed(monkeypatch, tmp_path):
    monkeypatch.delenv("DIANA_PSEUDONYM_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no key file either
    with pytest.raises(ConfigError, match="diana key new"):
        Pseudonymizer().replacement_map(TAGS)
    with pytest.raises(ConfigError):
        Pseudonymizer().remap_uid("1.2.3")
    unkeyed = Pseudonymizer(unkeyed=True)
    assert unkeyed.key_id == "unkeyed"
    # unkeyed is the original DIANA algorithm: anyone can recompute it
    assert unkeyed.replacement_map(TAGS)["PatientID"] == GUIDMint().get_sham_id(
        "WOODSON^LISA^T", dob=date(1973, 9, 25), gender="F").ID


def test_key_id_is_a_fingerprint_never_the_key():
    p = Pseudonymizer(key="s3cret-project-key")
    assert p.key_id == key_id("s3cret-project-key") and p.key_id.startswith("k-") and "s3cret" not in p.key_id
    assert p.key_id != Pseudonymizer(key="another").key_id
    assert "s3cret" not in repr(p)
