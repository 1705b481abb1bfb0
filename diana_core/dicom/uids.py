"""Reproducible DICOM UIDs.

``DicomUIDMint`` is the original DIANA hierarchical scheme, kept bit-for-bit for users with existing datasets.
Its 4-digit series/instance components collide, so anonymization uses ``KeyedUIDMint`` by default: a keyed
128-bit hash of the original UID under the "2.25" root (or a root the user owns), one output per input UID.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from attrs import define, field

from diana_core.errors import ValidationError

_UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


def is_valid_uid(uid: str) -> bool:
    """True for a DICOM UID: <= 64 chars, digits and dots, no empty component, no leading zero."""
    return len(uid) <= 64 and bool(_UID_RE.match(uid))


def hash_str(s: object, digits: int) -> str:
    """DIANA's digest: the sha1 integer of ``str(s)`` modulo 10**digits, no zero padding."""
    return str(int(hashlib.sha1(str(s).encode("utf-8")).hexdigest(), 16) % 10**digits)


@define
class DicomUIDMint:
    """The original DIANA UID scheme: prefix.app.patient.study[.series[.instance]] (exact, collision-prone)."""

    app_id: str = "dicom"
    prefix: str = "1.2.826.0.1.3680043.10.43"

    def hierarchical_suffix(
        self,
        PatientID: str,
        StudyInstanceUID: str,
        SeriesInstanceUID: str | None = None,
        SOPInstanceUID: str | None = None,
    ) -> str:
        """The part after the prefix: app(2).patient(12).study(12)[.series(4)[.instance(4)]]."""
        suffix = f"{hash_str(self.app_id, 2)}.{hash_str(PatientID, 12)}.{hash_str(StudyInstanceUID, 12)}"
        if SeriesInstanceUID is not None:
            suffix += f".{hash_str(SeriesInstanceUID, 4)}"
            if SOPInstanceUID is not None:
                suffix += f".{hash_str(SOPInstanceUID, 4)}"
        return suffix

    def uid(
        self,
        PatientID: str | None = None,
        StudyInstanceUID: str | None = None,
        SeriesInstanceUID: str | None = None,
        SOPInstanceUID: str | None = None,
    ) -> str:
        """A reproducible UID for the given identifiers (PatientID and StudyInstanceUID required)."""
        if PatientID is None or StudyInstanceUID is None:
            raise ValidationError("DicomUIDMint.uid needs PatientID and StudyInstanceUID")
        return f"{self.prefix}.{self.hierarchical_suffix(PatientID, StudyInstanceUID, SeriesInstanceUID, SOPInstanceUID)}"


def _check_root(_instance: object, _attribute: object, root: str) -> None:
    if not is_valid_uid(root) or len(root) > 30:
        raise ValidationError(f"UID root {root!r} must be a valid UID of at most 30 characters")


@define
class KeyedUIDMint:
    """Collision-free reproducible UIDs: root + "." + integer of a keyed 128-bit hash of the original UID.

    The same input UID (with the same key) always maps to the same output, in every file and every run; without
    the key, outsiders cannot recompute the mapping from a guessed original.
    """

    key: str | bytes = field(default=b"", repr=False)
    root: str = field(default="2.25", validator=_check_root)

    def remap(self, uid: str) -> str:
        """The pseudonymous UID for one original UID."""
        key = self.key.encode() if isinstance(self.key, str) else self.key
        digest = hmac.new(key, str(uid).encode("utf-8"), hashlib.sha256).digest()
        number = int.from_bytes(digest[:16], "big")
        room = 64 - len(self.root) - 1
        if len(str(number)) > room:
            number %= 10**room
        return f"{self.root}.{number}"

    def uid(
        self,
        PatientID: str | None = None,
        StudyInstanceUID: str | None = None,
        SeriesInstanceUID: str | None = None,
        SOPInstanceUID: str | None = None,
    ) -> str:
        """Same call shape as ``DicomUIDMint.uid``: remaps the most specific UID given."""
        for value in (SOPInstanceUID, SeriesInstanceUID, StudyInstanceUID):
            if value is not None:
                return self.remap(value)
        if PatientID is None:
            raise ValidationError("KeyedUIDMint.uid needs at least one identifier")
        return self.remap(f"patient|{PatientID}")
