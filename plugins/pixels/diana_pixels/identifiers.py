"""What to look for in burned-in text: the same instance's identifying header values, and generic patterns.

Values become normalized tokens (upper case, letters and digits only) so OCR's punctuation and spacing do not
matter; dates are spelled in the formats screens use. Generic patterns catch dates and long digit runs the header
does not hold (a prior study's date, a phone number).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from difflib import SequenceMatcher
from typing import Any

_PERSON_KEYS = ("PatientName", "OtherPatientNames", "PatientBirthName", "PatientMotherBirthName",
                "ReferringPhysicianName", "PerformingPhysicianName", "NameOfPhysiciansReadingStudy", "OperatorsName",
                "PhysiciansOfRecord", "RequestingPhysician")
_ID_KEYS = ("PatientID", "OtherPatientIDs", "AccessionNumber", "StudyID", "IssuerOfPatientID",
            "MedicalRecordLocator", "AdmissionID")
_PLACE_KEYS = ("InstitutionName", "InstitutionAddress", "InstitutionalDepartmentName", "StationName",
               "PatientAddress")
_DATE_KEYS = ("PatientBirthDate", "StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
# words that identify nobody alone: titles, particles and the generic parts of institution names
_SHORT_WORDS = {"DR", "MD", "MR", "MS", "MRS", "JR", "SR", "THE", "OF", "AND", "DE", "LA", "VAN", "VON", "ST",
                "GENERAL", "HOSPITAL", "MEDICAL", "CENTER", "CENTRE", "CLINIC", "UNIVERSITY", "HEALTH", "SAINT",
                "RADIOLOGY", "DEPARTMENT", "IMAGING", "INSTITUTE", "REGIONAL", "COUNTY", "CHILDRENS"}

# generic identifiers: dates (numeric and with month names) and runs of 6+ digits (IDs, phone numbers)
_MONTH = r"(?:JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)[A-Z]*"
GENERIC = (
    ("date pattern", re.compile(r"\b\d{1,4}[-/.]\d{1,2}[-/.]\d{2,4}\b")),
    ("date pattern", re.compile(rf"\b\d{{1,2}}[-\s/.]?{_MONTH}[-\s/.,]*\d{{2,4}}\b", re.IGNORECASE)),
    ("date pattern", re.compile(rf"\b{_MONTH}[-\s/.]?\d{{1,2}}[,\s]+\d{{2,4}}\b", re.IGNORECASE)),
    ("digit run", re.compile(r"\b\d{6,}\b|\b\d{2,4}-\d{3,4}-\d{3,4}\b")),
)


_LOOKALIKES = str.maketrans("OQDILJSZBG", "0001115286")


def norm(text: str) -> str:
    """Upper case, letters and digits only (OCR keeps or drops punctuation and spaces unpredictably)."""
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def fold(text: str) -> str:
    """``norm`` with letters OCR confuses with digits folded to the digit (O/0, I/1, S/5...): for IDs and dates."""
    return norm(text).translate(_LOOKALIKES)


def _values(ds: Any, key: str) -> list[str]:
    value = ds.get(key)
    if value in (None, ""):
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value if str(v)]
    return [str(value)]


def date_spellings(da: str) -> set[str]:
    """Normalized spellings of a DICOM date (YYYYMMDD) as screens print it: ISO, US, European, with month names."""
    try:
        d = date(int(da[:4]), int(da[4:6]), int(da[6:8]))
    except (ValueError, IndexError):
        return set()
    y, yy, m, dd, mon = f"{d.year:04d}", f"{d.year % 100:02d}", f"{d.month:02d}", f"{d.day:02d}", _MONTHS[d.month - 1]
    out = {y + m + dd, m + dd + y, dd + m + y, dd + mon + y, mon + dd + y, dd + mon + yy, m + dd + yy, dd + m + yy,
           str(d.month) + str(d.day) + y, str(d.day) + str(d.month) + y, str(d.day) + mon + y, mon + str(d.day) + y}
    return {s for s in out if len(s) >= 6}


class HeaderIdentifiers:
    """The identifying values of one instance, ready to match OCR words and lines against."""

    def __init__(self, ds: Any) -> None:
        self.words: set[str] = set()  # name and place words (matched per OCR word, fuzzily when long)
        self.exact: set[str] = set()  # IDs and dates (matched in a line's normalized text)
        self.companions: set[str] = set()  # every word of those values: blanked beside a matched word
        for key in _PERSON_KEYS + _PLACE_KEYS:
            for value in _values(ds, key):
                parts = [w for w in (norm(p) for p in re.split(r"[\^=\s,.]+", value)) if len(w) >= 2]
                self.companions.update(parts)
                self.words.update(w for w in parts if w not in _SHORT_WORDS)
        for key in _ID_KEYS:
            self.exact.update(v for v in (fold(x) for x in _values(ds, key)) if len(v) >= 3)
        for key in _DATE_KEYS:
            for value in _values(ds, key):
                self.exact.update(fold(v) for v in date_spellings(value))

    def word_matches(self, word: str) -> bool:
        """An OCR word that is (or, 5+ letters long, nearly is) a name/place word, or holds an ID or a date."""
        w = norm(word)
        if len(w) < 2:
            return False
        if w in self.words or any(v in fold(word) for v in self.exact):
            return True
        if len(w) >= 3 and any(len(v) >= 3 and v in w for v in self.words):
            return True  # "SMITHJOHN" (OCR ran the caret's words together)
        return len(w) >= 5 and any(abs(len(v) - len(w)) <= 1 and SequenceMatcher(None, v, w).ratio() >= 0.8
                                   for v in self.words if len(v) >= 5)

    def id_part(self, word: str) -> int | None:
        """For a word that is part of an ID or date (4+ characters, OCR dropped or misread the rest): how many
        characters of the value it lacks (its box is widened by that many on each side); else None."""
        f = fold(word)
        if len(f) < 4 or sum(c.isdigit() for c in word) < 3:
            return None
        best: int | None = None
        for v in self.exact:
            if f in v or (len(f) >= 6 and SequenceMatcher(None, v, f).ratio() >= 0.75):
                missing = max(0, len(v) - len(f))
                best = missing if best is None else max(best, missing)
        if best is None and sum(c.isdigit() for c in word) >= 4 and sum(c.isdigit() for c in f) >= 6:
            return 0  # a misread long number: a generic identifier all the same
        return best

    def near_name(self, word: str) -> bool:
        """Looser test for a word on the same line as a matched name word: another word of the same values (even a
        generic one), part of a name word, or close to one."""
        w = norm(word)
        if not w:
            return False  # a lone letter is a middle initial when a name word starts with it
        if w in self.companions:
            return True  # "General" beside "Riverside": part of the institution's name here
        return any(v.startswith(w) or (len(w) >= 3 and w in v) or SequenceMatcher(None, v, w).ratio() >= 0.6
                   for v in self.words)

    def line_spans(self, text: str) -> Iterable[tuple[int, int, str]]:
        """(start, end, why) of identifiers in one OCR line's text: header IDs/dates and generic patterns."""
        for why, pattern in GENERIC:
            for m in pattern.finditer(text):
                yield m.start(), m.end(), why
        # header values, looked for in the line with spaces and punctuation removed, mapped back to positions
        keep = [i for i, c in enumerate(text) if c.isalnum()]
        squeezed = fold("".join(text[i] for i in keep))
        for value in self.exact:
            start = squeezed.find(value)
            while start >= 0:
                yield keep[start], keep[start + len(value) - 1] + 1, "header value"
                start = squeezed.find(value, start + 1)
