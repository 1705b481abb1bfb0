"""Levels, Orthanc ids and UID mints: the facts the original DIANA pinned (DESIGN §7)."""

import hashlib
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diana_core.dicom import DicomLevel, DicomUIDMint, KeyedUIDMint, hash_str, is_valid_uid, orthanc_id
from diana_core.errors import ValidationError

UID_CHARS = st.text(alphabet="0123456789.", min_size=1, max_size=64)


def test_levels_are_ordered_and_print_as_orthanc_collections():
    assert DicomLevel.PATIENTS < DicomLevel.STUDIES < DicomLevel.SERIES < DicomLevel.INSTANCES
    assert [int(x) for x in DicomLevel] == [1, 2, 3, 4]
    assert str(DicomLevel.STUDIES) == "studies"
    assert str(DicomLevel.INSTANCES) == "instances"


@pytest.mark.parametrize("label", ["studies", "Study", "STUDIES", 2, DicomLevel.STUDIES, "study "])
def test_level_from_label_accepts_names_ints_and_levels(label):
    assert DicomLevel.from_label(label) is DicomLevel.STUDIES


def test_level_from_label_rejects_nonsense():
    with pytest.raises(ValidationError, match="unknown DICOM level"):
        DicomLevel.from_label("galaxy")


def test_orthanc_id_matches_the_verified_ct_small_instance_id():
    # ids verified against a real Orthanc 1.10.1 for pydicom's CT_small.dcm (shared/services.md)
    oid = orthanc_id("1CT1", "1.3.6.1.4.1.5962.1.2.1.20040119072730.12322",
                     "1.3.6.1.4.1.5962.1.3.1.1.20040119072730.12322", "1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322")
    assert oid == "f689ddd2-662f8fe1-8b18180d-ec2a2cee-937917af"


def test_orthanc_id_format_and_patient_level():
    oid = orthanc_id("PATIENT")
    digest = hashlib.sha1(b"PATIENT").hexdigest()
    assert oid.replace("-", "") == digest
    assert re.fullmatch(r"([0-9a-f]{8}-){4}[0-9a-f]{8}", oid)


def test_hash_str_has_no_zero_padding():
    values = [hash_str(i, 4) for i in range(2000)]
    assert any(len(v) < 4 for v in values)
    assert all(not (len(v) > 1 and v.startswith("0")) for v in values)


def test_diana_uid_mint_is_the_exact_reference_algorithm():
    mint = DicomUIDMint()
    uid = mint.uid("P", "S", "SE", "I")
    expected = ".".join(["1.2.826.0.1.3680043.10.43", hash_str("dicom", 2), hash_str("P", 12), hash_str("S", 12),
                         hash_str("SE", 4), hash_str("I", 4)])
    assert uid == expected
    assert mint.uid("P", "S") == ".".join(expected.split(".")[:-2])
    assert uid.startswith(mint.prefix + ".")


def test_diana_uid_mint_needs_patient_and_study():
    with pytest.raises(ValidationError):
        DicomUIDMint().uid(StudyInstanceUID="1.2")


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1), st.text(min_size=1), st.text(min_size=1), st.text(min_size=1))
def test_both_mints_give_valid_deterministic_uids(pid, study, series, sop):
    for mint in (DicomUIDMint(), KeyedUIDMint(b"secret"), KeyedUIDMint(b"", root="1.2.3.4.5.6.7.8.9.10.11.12")):
        first = mint.uid(pid, study, series, sop)
        assert is_valid_uid(first), first
        assert first == mint.uid(pid, study, series, sop)


def test_keyed_mint_is_collision_free_over_100k_ids():
    mint = KeyedUIDMint(b"k")
    out = {mint.remap(f"1.2.840.10008.{i}") for i in range(100_000)}
    assert len(out) == 100_000
    assert all(len(u) <= 64 for u in out)


def test_keyed_mint_depends_on_the_key():
    assert KeyedUIDMint(b"a").remap("1.2.3") != KeyedUIDMint(b"b").remap("1.2.3")


def test_diana_mint_collides_where_the_keyed_mint_does_not():
    # the documented flaw: 4-digit instance components collide within one 300-slice series
    diana = {DicomUIDMint().uid("P", "S", "SE", f"1.2.{i}") for i in range(300)}
    keyed = {KeyedUIDMint().uid("P", "S", "SE", f"1.2.{i}") for i in range(300)}
    assert len(keyed) == 300
    assert len(diana) <= 300


@pytest.mark.parametrize("bad", ["1.02.3", "1..2", ".1", "1.2.", "a.1", "1" * 65])
def test_is_valid_uid_rejects_bad_uids(bad):
    assert not is_valid_uid(bad)


def test_keyed_mint_rejects_a_bad_root():
    with pytest.raises(ValidationError):
        KeyedUIDMint(root="1.02")


@settings(max_examples=50, deadline=None)
@given(st.sets(st.text(alphabet="0123456789.", min_size=1, max_size=64), min_size=2, max_size=2000),
       st.binary(max_size=32))
def test_keyed_mint_is_injective_on_any_set_of_inputs(uids, key):
    mint = KeyedUIDMint(key)
    out = [mint.remap(u) for u in uids]
    assert len(set(out)) == len(uids)
    assert out == [mint.remap(u) for u in uids]
