"""Study-level view of a DICOM folder: which files make up which study, built by one header scan, kept current.

Files are stored per instance; the Collector and the routes work per study (find by AccessionNumber, exists by the
study's Orthanc id, a study as one zip). ``StudyIndex`` maps study Orthanc ids to their files and study tags.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import define, field

from diana_core import Dixel, DixelView
from diana_core.dicom import DicomLevel, orthanc_id
from diana_core.errors import NotFound, ValidationError

STUDY_TAGS = ("PatientID", "PatientName", "PatientBirthDate", "PatientSex", "PatientAge", "AccessionNumber",
              "StudyInstanceUID", "StudyDate", "StudyTime", "StudyDescription", "ReferringPhysicianName")
INDEX_KEYS = (*STUDY_TAGS, "Modality", "SeriesInstanceUID", "SOPInstanceUID")


def study_oid(tags: Mapping[str, Any]) -> str | None:
    """The Orthanc id of the study an instance belongs to (None without PatientID/StudyInstanceUID)."""
    pid, uid = tags.get("PatientID"), tags.get("StudyInstanceUID")
    if pid is None or not uid:
        return None
    return orthanc_id(str(pid), str(uid))


@define
class StudyEntry:
    tags: dict[str, Any]
    paths: set[str] = field(factory=set)
    modalities: set[str] = field(factory=set)

    def dixel(self, oid: str) -> Dixel:
        meta = {"ID": oid, "InstanceCount": len(self.paths)}
        tags = {**self.tags, "ModalitiesInStudy": "\\".join(sorted(self.modalities))}
        return Dixel(meta=meta, tags=tags, level=DicomLevel.STUDIES)


LOOKUP_KEYS = ("AccessionNumber", "StudyInstanceUID", "PatientID")
"""Study tags with a value -> study ids map: a find by one of them (the Collector's per-study lookup) reads the
matching studies only, not every study of the folder (O(1) per study, not O(studies))."""


@define
class StudyIndex:
    """Thread-safe map study Orthanc id -> StudyEntry, with lookups by ``LOOKUP_KEYS`` and by file path."""

    entries: dict[str, StudyEntry] = field(factory=dict)
    _lock: threading.Lock = field(factory=threading.Lock, repr=False, eq=False)
    _by_tag: dict[str, dict[str, set[str]]] = field(factory=lambda: {k: {} for k in LOOKUP_KEYS}, repr=False,
                                                   eq=False)
    _by_path: dict[str, str] = field(factory=dict, repr=False, eq=False)

    @classmethod
    def build(cls, headers: Iterable[Dixel]) -> StudyIndex:
        index = cls()
        for dixel in headers:
            if dixel.fn:
                index.add(dixel.tags, dixel.fn)
        return index

    def add(self, tags: Mapping[str, Any], path: str) -> None:
        oid = study_oid(tags)
        if oid is None:
            return
        with self._lock:
            entry = self.entries.get(oid)
            if entry is None:
                entry = self.entries[oid] = StudyEntry(tags={k: str(tags[k]) for k in STUDY_TAGS if tags.get(k)})
                for key, ids in self._by_tag.items():
                    if key in entry.tags:
                        ids.setdefault(entry.tags[key], set()).add(oid)
            entry.paths.add(path)
            before = self._by_path.get(path)
            self._by_path[path] = oid
            if before is not None and before != oid and before in self.entries:  # the file now holds another study
                self.entries[before].paths.discard(path)
                if not self.entries[before].paths:
                    self._drop(before)
            if tags.get("Modality"):
                entry.modalities.add(str(tags["Modality"]))

    def _drop(self, oid: str) -> StudyEntry | None:
        """Remove a study and its lookups (lock held)."""
        entry = self.entries.pop(oid, None)
        if entry is None:
            return None
        for key, ids in self._by_tag.items():
            value = entry.tags.get(key)
            if value is not None and value in ids:
                ids[value].discard(oid)
                if not ids[value]:
                    del ids[value]
        for path in entry.paths:
            if self._by_path.get(path) == oid:
                del self._by_path[path]
        return entry

    def discard(self, oid: str) -> StudyEntry | None:
        with self._lock:
            return self._drop(oid)

    def discard_path(self, path: str) -> None:
        with self._lock:
            oid = self._by_path.pop(path, None)
            entry = self.entries.get(oid) if oid is not None else None
            if entry is None:
                return
            entry.paths.discard(path)
            if not entry.paths:
                self._drop(oid)  # type: ignore[arg-type]

    def get(self, oid: str) -> StudyEntry | None:
        with self._lock:
            return self.entries.get(oid)

    def paths_of(self, study_uid: str) -> list[str]:
        """Every file of the study(ies) with this StudyInstanceUID, sorted."""
        with self._lock:
            oids = self._by_tag["StudyInstanceUID"].get(study_uid, ())
            return sorted(p for oid in oids for p in self.entries[oid].paths)

    def find(self, query: Mapping[str, Any]) -> list[Dixel]:
        """Studies whose study-level tags equal every query value (empty values match anything)."""
        wanted = {k: str(v) for k, v in query.items() if v not in (None, "", "*")}
        with self._lock:
            looked_up = [self._by_tag[k].get(v, set()) for k, v in wanted.items() if k in self._by_tag]
            if looked_up:
                oids = min(looked_up, key=len)
                items = [(oid, self.entries[oid]) for oid in sorted(oids)]
            else:
                items = list(self.entries.items())
        return [e.dixel(oid) for oid, e in items if all(e.tags.get(k) == v for k, v in wanted.items())]


def study_entry(folder: Any, item: Any) -> tuple[str, StudyEntry]:
    """(study id, entry) of a study Dixel, an instance Dixel (its study) or a study id; NotFound if absent."""
    if isinstance(item, Dixel):
        oid = item.oid() if item.level == DicomLevel.STUDIES else study_oid(item.tags)
    else:
        oid = str(item)
    entry = folder.studies().get(str(oid))
    if entry is None:
        raise NotFound(f"DcmDir {folder.name!r}: no study {oid}")
    return str(oid), entry


def get_indexed_study(folder: Any, item: Any, view: DixelView, dest: Any) -> Dixel:
    """A study's tags (TAGS) and, for FILE, the study written as one zip to ``dest`` (a path)."""
    oid, entry = study_entry(folder, item)
    dixel = entry.dixel(oid)
    if DixelView.FILE in view:
        if dest is None:
            raise ValidationError(f"DcmDir {folder.name!r}: the FILE view of study {oid} is a zip; give dest=")
        dixel.meta["InstanceCount"] = folder.write_zip(sorted(entry.paths), os.fspath(dest))
        dixel.meta["FileName"] = os.fspath(dest)
    return dixel
