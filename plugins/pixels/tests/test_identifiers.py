"""What OCR text counts as identifying (no OCR here: the matching alone, on words as Tesseract returns them)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from diana_pixels.identifiers import HeaderIdentifiers, date_spellings


@pytest.fixture
def ids() -> HeaderIdentifiers:
    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.AccessionNumber = "KOWALSKI^MARTA", "MRN4471902", "A20240311"
    ds.PatientBirthDate, ds.StudyDate = "19580823", "20240311"
    ds.InstitutionName, ds.ReferringPhysicianName = "Riverside General", "OKAFOR^BEN"
    return HeaderIdentifiers(ds)


def _line(ids: HeaderIdentifiers, text: str) -> set[str]:
    return {text[a:b] for a, b, _ in ids.line_spans(text)}


@pytest.mark.parametrize("word", ["KOWALSKI", "Marta", "KOWALSK1", "Kowalsky", "KOWALSKI^MARTA,", "Okafor",
                                  "Riverside", "MRN447I9O2", "(A20240311)"])
def test_header_words_match_with_ocr_noise(ids, word):
    assert ids.word_matches(word)


@pytest.mark.parametrize("word", ["Depth", "16", "cm", "Gain", "MR", "Dr", "General1y", "Kidney", "RIGHT"])
def test_other_words_do_not(ids, word):
    assert not ids.word_matches(word) and ids.id_part(word) is None


@pytest.mark.parametrize("text", ["DOB 08/23/1958", "23.08.1958", "23-Aug-1958", "Aug 23, 1958", "1958-08-23",
                                  "Study 11/03/2024", "Acc A2024O311", "Tel 555-201-3344", "MRN 4471902"])
def test_dates_ids_and_long_numbers_are_found_in_lines(ids, text):
    assert _line(ids, text), text


@pytest.mark.parametrize("text", ["W 400 L 40", "Depth 16 cm", "Gain 52 dB", "FR 30Hz", "12:41:07"])
def test_measurements_are_not(ids, text):
    assert not _line(ids, text), text


def test_a_partly_read_id_widens_by_what_is_missing(ids):
    assert ids.id_part("4471902") == 3 and ids.id_part("A2024031l") == 0 and ids.id_part("3769") is None


def test_date_spellings():
    assert {"19580823", "08231958", "23081958", "23AUG1958", "AUG231958"} <= date_spellings("19580823")
    assert date_spellings("1958") == set()


def test_generic_words_of_a_value_go_only_beside_its_distinctive_ones(ids):
    assert not ids.word_matches("General") and ids.near_name("General")  # blanked on the line naming Riverside
    assert ids.near_name("M") and not ids.near_name("Q")  # a middle initial of a name word
