"""Radiology report text mining, as the original DIANA did it: RADCAT, Lung-RADS and BI-RADS grades, screening
history (current smoker, pack-years, years since quitting), bone age, and report de-identification.

Pure stdlib regular expressions over the report text (``Dixel.report`` or Montage's ``ReportText``). The patterns
are the original's, so grades mined from existing report archives do not change.
"""

from __future__ import annotations

import re
from datetime import date
from html.parser import HTMLParser
from typing import Any

from attrs import define, field

from diana_core.errors import ValidationError

# Lifespan/RIMI report template lines that name people, MRNs or dates of service
_PHI_RE = re.compile(r"^.* MD.*$|^.*MRN.*$|^.*DOS.*$|^(?:.* )Dr.*$|^.* NP.*$|^.* RN.*$|^.* RA.*$|^.* PA.*$"
                     r"|^Report created.*$|^.*Signing Doctor.*$|^.*has reviewed.*$", re.M)
_FINDINGS_RE = re.compile(r"^.*discussed.*$|^.*nurse practitioner.*$|^.*physician assistant.*$|^.*virtual rad.*$",
                          re.M | re.I)
_RADCAT_LINE_RE = re.compile(r"^.*RADCAT.*$", re.M)
_PHONE_RE = re.compile(r"\s*(?:\+?(\d{1,3}))?[-. (]*(\d{3})[-. )]*(\d{3})[-. ]*(\d{4})(?: *x(\d+))?\s*", re.M)
_RADCAT_RE = re.compile(r"(?i)RADCAT(?: Grade)?:? ?R?(\d)")
_RADCAT3_RE = re.compile(r"(?i)RADCAT(?: Grade)?:? ?R?3")
_BIRADS_RE = re.compile(r"(?i)BI[- ]RADS (?:CATEGORY )?([0-6])")
_LUNGRADS_RE = re.compile(r"(?:Lung-RADS)[^\d]*(\d[SC]*)")
_SMOKER_RE = re.compile(r"(?<! not) (?:a )?([Cc]urrent)(?:ly)? (?!> no[nt])(smok)")
_PACK_YEARS_RE = re.compile(r"(?P<years>\d{1,4}).*(?=pack).*(?=y(?:ea)?r)")
_QUIT_RE = re.compile(r"(quit)[^\d]*(\d{1,4}) ?(months|years)?", re.IGNORECASE)
_NO_PRIOR_RE = re.compile(r"no.*prior.*comparison")
_NUMBERS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
            "nine": 9, "ten": 10, "eleven": 11}
_SKELETAL_RE = re.compile(r"(?:(?:[Bb]one)|(?:[Ss]keletal)) age[^\d]*(\d{1,2}) year[^\d]*(\d{1,2}) month")
_CHRONOLOGIC_RE = re.compile(r"[Cc]hronologic[^\d]*(\d{1,2}) year[^\d]*(\d{1,2}) month")

EXTRACTORS = ("radcat", "lungrads", "birads")


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):  # the original's tests passed readlines()
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


def plain_text(text: str | None) -> str | None:
    """Report text without markup (Montage answers HTML): "\\r" becomes a newline, and a newline goes between
    text pieces when the next one starts a new section (capital letter or digit) rather than a sentence."""
    if not text:
        return text
    parser = _TextPieces()
    parser.feed(text)
    parser.close()
    pieces = parser.pieces
    out = []
    for piece, following in zip(pieces, pieces[1:] + [""], strict=True):
        piece = piece.replace("\r", "\n")
        if following and (following[0].isupper() or following[0].isnumeric()):
            piece += "\n"
        out.append(piece)
    return "".join(out)


class _TextPieces(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str] = []

    def handle_data(self, data: str) -> None:
        if data:
            self.pieces.append(data)


@define
class RadiologyReport:
    """The text of one report, with the original's extractors. ``str(report)`` is the text; ``"word" in report``
    searches it."""

    text: str = field(converter=_text)

    def __str__(self) -> str:
        return self.text

    def __contains__(self, words: object) -> bool:
        return str(words) in self.text

    # --- grades ------------------------------------------------------------------------------------
    def radcat(self) -> tuple[str, bool]:
        """(first RADCAT grade, whether any RADCAT 3 is stated); ValidationError when none is."""
        found = _RADCAT_RE.findall(self.text)
        if not found:
            raise ValidationError("no RADCAT grade in the report")
        return found[0], bool(_RADCAT3_RE.search(self.text))

    def lungrads(self) -> str | None:
        """The first Lung-RADS category (e.g. "2S"), or None."""
        found = _LUNGRADS_RE.findall(self.text)
        return found[0] if found else None

    def birads(self) -> str:
        """The highest BI-RADS category stated; ValidationError when none is."""
        found = _BIRADS_RE.findall(self.text)
        if not found:
            raise ValidationError("no BI-RADS category in the report")
        return max(found)

    def extract(self, *kinds: str) -> dict[str, Any]:
        """The named grades (default: all of ``EXTRACTORS``) as a dict; a grade the report lacks is None."""
        out: dict[str, Any] = {}
        for kind in kinds or EXTRACTORS:
            if kind == "radcat":
                try:
                    out["radcat"], out["radcat3"] = self.radcat()
                except ValidationError:
                    out["radcat"], out["radcat3"] = None, False
            elif kind == "lungrads":
                out["lungrads"] = self.lungrads()
            elif kind == "birads":
                try:
                    out["birads"] = self.birads()
                except ValidationError:
                    out["birads"] = None
            else:
                raise ValidationError(f"unknown report extractor {kind!r}; use one of {', '.join(EXTRACTORS)}")
        return out

    # --- lung screening ----------------------------------------------------------------------------
    def is_annual(self) -> bool:
        """True unless the report says there is no prior comparison."""
        return not _NO_PRIOR_RE.search(self.text)

    def current_smoker(self) -> bool:
        return bool(_SMOKER_RE.search(self.text))

    def pack_years(self) -> str | None:
        found = _PACK_YEARS_RE.findall(self.text)
        best = max(found) if found else None
        return best if best and best > "0" else None

    def years_since_quit(self, reference_year: int | None = None) -> int | None:
        """Years since the patient quit; a quit *year* is counted from ``reference_year`` (default: this year)."""
        found = _QUIT_RE.findall(self.text)
        if not found:
            return None
        _, number, units = found[0]
        if units == "years":
            return int(number)
        if units == "months":
            return int(int(number) / 12 + 1)
        if len(number) > 3:
            return (reference_year or date.today().year) - int(number)
        return None

    # --- bone age ----------------------------------------------------------------------------------
    def _numbers_as_digits(self) -> str:
        text = self.text
        for word, value in _NUMBERS.items():
            text = re.sub(rf"\W{word}\W", f" {value} ", text)
        return text

    def skeletal_age(self) -> tuple[str, str] | None:
        """(years, months) of the last stated bone/skeletal age (an addendum wins)."""
        found = _SKELETAL_RE.findall(self._numbers_as_digits())
        return found[-1] if found else None

    def chronological_age(self) -> tuple[str, str] | None:
        found = _CHRONOLOGIC_RE.findall(self._numbers_as_digits())
        return found[-1] if found else None

    # --- de-identification -------------------------------------------------------------------------
    def anonymized(self) -> str:
        """The text without template lines naming people/MRNs/dates, discussion lines, RADCAT lines (blinding),
        and with phone numbers replaced."""
        text = _PHI_RE.sub("", self.text)
        text = _FINDINGS_RE.sub("", text)
        text = _RADCAT_LINE_RE.sub("", text)
        text = _PHONE_RE.sub("(555) 555-5555 ", text)
        return text.rstrip() + "\n"

    def anonymize(self) -> None:
        self.text = self.anonymized()


# the original's specialised report classes: every extractor now lives on RadiologyReport
LungScreeningReport = MammographyReport = BoneAgeReport = RadiologyReport
