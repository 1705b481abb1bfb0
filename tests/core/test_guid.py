"""GUIDMint reproduces the original DIANA pseudo-identities (DESIGN §7 example values)."""

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diana_core.errors import ValidationError
from diana_core.guid import GUIDMint


def test_reference_example():
    sham = GUIDMint().get_sham_id("Bar Z Foo", dob="2000-01-01", gender="U")
    assert sham.ID == "WHLOKMAGICLQGYKC3ZQLLMFKMOX3ZAP2"
    assert sham.dicom_name == "WAGENAAR^HERIBERTO^L"
    assert sham.BirthDate == date(1999, 10, 8)
    assert abs(sham.TimeOffset) <= timedelta(days=91)


def test_name_key_is_sorted_lowercase_words():
    assert GUIDMint.name_key("MERCK^DEREK^L") == "derek-l-merck"
    assert GUIDMint.name_key("Merck, Derek L.") == "derek-l-merck"


def test_age_needs_a_reference_date_never_today():
    with pytest.raises(ValidationError):
        GUIDMint().get_sham_id("MERCK^DEREK^L", age=30)
    a = GUIDMint().get_sham_id("MERCK^DEREK^L", age=30, reference_date="2018-01-01")
    b = GUIDMint().get_sham_id("MERCK^DEREK^L", age=30, reference_date=date(2018, 1, 1))
    assert a == b


def test_gender_selects_name_list_and_unknown_gender_is_u():
    female = GUIDMint().get_sham_id("DOE^JANE", dob="19800101", gender="F")
    other = GUIDMint().get_sham_id("DOE^JANE", dob="19800101", gender="X")
    unknown = GUIDMint().get_sham_id("DOE^JANE", dob="19800101", gender="U")
    assert other == unknown
    assert female.ID != unknown.ID


def test_secret_key_changes_the_pseudonym():
    plain = GUIDMint().get_sham_id("DOE^JANE", dob="19800101")
    keyed = GUIDMint("s3cret").get_sham_id("DOE^JANE", dob="19800101")
    assert keyed.ID != plain.ID
    assert keyed == GUIDMint(b"s3cret").get_sham_id("DOE^JANE", dob="19800101")


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=40), st.dates(min_value=date(1900, 1, 1), max_value=date(2030, 1, 1)),
       st.sampled_from("MFU"))
def test_pseudonyms_are_deterministic_and_well_formed(name, dob, gender):
    a = GUIDMint().get_sham_id(name, dob=dob, gender=gender)
    assert a == GUIDMint().get_sham_id(name, dob=dob, gender=gender)
    assert len(a.ID) == 32 and a.ID[:3].isalpha()
    assert a.Name[0][0] == a.ID[0] and a.Name[1][0] == a.ID[1] and a.Name[2] == a.ID[2]
    assert abs((a.BirthDate - dob).days) <= 90
