"""DICOM query/retrieve levels, ordered general < specific."""

from __future__ import annotations

import enum

from diana_core.errors import ValidationError


class DicomLevel(enum.IntEnum):
    """PATIENTS < STUDIES < SERIES < INSTANCES; ``str()`` is Orthanc's REST collection name."""

    PATIENTS = 1
    STUDIES = 2
    SERIES = 3
    INSTANCES = 4

    def __str__(self) -> str:
        return self.name.lower()

    @property
    def dicom_name(self) -> str:
        """The QueryRetrieveLevel value / Orthanc tools/find Level ("Patient", "Study", ...)."""
        return {1: "Patient", 2: "Study", 3: "Series", 4: "Instance"}[self.value]

    @property
    def parent(self) -> DicomLevel | None:
        return DicomLevel(self.value - 1) if self.value > 1 else None

    @property
    def child(self) -> DicomLevel | None:
        return DicomLevel(self.value + 1) if self.value < 4 else None

    @classmethod
    def from_label(cls, label: DicomLevel | int | str) -> DicomLevel:
        """Accept a level, an int (1-4) or a case-insensitive name ("study", "Studies", "INSTANCE")."""
        if isinstance(label, cls):
            return label
        if isinstance(label, int):
            return cls(label)
        key = str(label).strip().lower()
        for level in cls:
            if key in {level.name.lower(), level.dicom_name.lower(), level.name.lower().rstrip("s")}:
                return level
        raise ValidationError(f"unknown DICOM level {label!r}; use one of patients, studies, series, instances")
