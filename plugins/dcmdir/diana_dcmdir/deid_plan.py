"""What the one engine does to an element, decided once per (tag, VR, level) for a profile: the verdict depends on
the profile's table and options only, never on the value, so every file of a job reuses it.

Both walks use it: ``anonymize._walk`` on pydicom datasets and ``rawengine`` on raw bytes.
"""

from __future__ import annotations

import functools
from typing import Any

from diana_core.deid_profile import Profile
from diana_dcmdir import annex_e

# verdicts: what to do, then the resolved VR and the action
DROP, KEEP, PRIVATE, RAW, CONVERT, REPLACE = range(6)

PATIENT_ID, ACCESSION, BIRTH_DATE = 0x00100020, 0x00080050, 0x00100030
# removed even under the modified-dates option: no longitudinal value, only identifying
NEVER_SHIFTED = frozenset({0x00100032, 0x001021D0})  # PatientBirthTime, LastMenstrualDate
NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "DS", "IS", "UV", "SV", "OF", "OD", "OW", "OL", "OV"})
# string VRs whose plain-ASCII values the engine decides from the raw bytes (see anonymize._raw_text)
RAW_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT"})

Verdict = tuple[int, Any, Any]  # (kind, VR, action)
_BOUND = 200_000  # memoized verdicts (and element headers) at most

_KNOWN: frozenset[int] = frozenset()


def dictionary_vr(tag: int) -> str | None:
    """The dictionary VR of a public tag (repeating groups included); None when the standard does not know it."""
    global _KNOWN
    from pydicom.datadict import DicomDictionary, dictionary_VR, mask_match

    if not _KNOWN:
        _KNOWN = frozenset(DicomDictionary)
    if tag in _KNOWN:
        return DicomDictionary[tag][0]
    if mask_match(tag) is None:
        return None
    return str(dictionary_VR(tag))


class Plan:
    """A profile's table and options, and the verdicts decided so far (memoized: a job sees the same few hundred)."""

    def __init__(self, profile: Profile) -> None:
        self.table = annex_e.actions(profile)
        self.shift = profile.has("retain-modified-dates")
        self.full_dates = profile.has("retain-full-dates")
        self.safe_private = profile.has("retain-safe-private")
        self.cleans = "C" in self.table.values()
        self.replaces = "R" in self.table.values()
        self.memo: dict[tuple[int, Any, bool], Verdict] = {}
        self.heads: dict[Any, dict[int, Any]] = {}  # the raw engine's memo of element headers (rawengine.scan)

    def verdict(self, tag: int, vr: str | None, top: bool) -> Verdict:
        """(kind, VR, action) for an element with raw VR ``vr`` (None: implicit VR) at the top level or nested."""
        key = (tag, vr, top)
        found = self.memo.get(key)
        if found is None:
            if len(self.memo) >= _BOUND:  # private tags vary by vendor: a daemon must not grow without end
                self.memo.clear()
                self.heads.clear()
            found = self.memo[key] = self._decide(tag, vr, top)
        return found

    def _decide(self, t: int, vr: str | None, top: bool) -> Verdict:
        group = t >> 16
        if group & 1:
            if self.safe_private and group > 8 and ((t & 0xFFFF) < 0x100 or vr in NUMERIC_VRS):
                return PRIVATE, vr, None
            return DROP, vr, None  # private tags (their creators too)
        if 0x5000 <= group <= 0x50FF or (0x6000 <= group <= 0x60FF and t & 0xFFFF in (0x3000, 0x4000)) \
                or (t & 0xFFFF) == 0:
            return DROP, vr, None  # curves, overlay data and comments, group lengths
        action = self.table.get(t)
        if vr is None or vr == "UN" or action is None:
            known = dictionary_vr(t)
            if known is None:
                return DROP, vr, None  # a public element the standard does not know: the profile cannot vouch for it
            if vr is None or vr == "UN":
                vr = known
        if vr in ("DA", "DT", "TM") and action in ("X", "Z", "D", None) and t not in NEVER_SHIFTED:
            if self.full_dates:
                return KEEP, vr, action
            if self.shift:
                action = "S"
        if action == "X":
            return DROP, vr, action
        if action == "K" or (top and action == "M" and t not in (PATIENT_ID, ACCESSION)):
            return KEEP, vr, action
        if action is None and vr not in ("UI", "PN", "SQ"):
            return KEEP, vr, action
        if action == "M" and t == BIRTH_DATE:
            return DROP, vr, action  # a nested birth date has no sham counterpart
        if action == "R":
            return REPLACE, vr, action
        if action != "C" and vr in RAW_VRS and t != PATIENT_ID and t != ACCESSION:
            return RAW, vr, action  # decided from the raw bytes when they are plain ASCII, else converted
        return CONVERT, vr, action


@functools.cache
def plan(profile: Profile) -> Plan:
    """The plan of ``profile`` (one per profile per process)."""
    return Plan(profile)
