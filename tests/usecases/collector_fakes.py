"""Honest in-memory implementations of the ports the Collector uses (STYLE: fakes for use-case tests).

``MemoryPacs`` is an Anonymizer source holding studies; ``MemoryArchive`` a Pseudonymizing destination storing
delivered studies.
Study archives travel as JSON bytes standing in for a zip.
"""

from __future__ import annotations

import json
from typing import Any

from attrs import define, field

from diana_core import DicomLevel, Dixel, DixelView, Endpoint, EndpointUnavailable, NotFound, orthanc_id


def make_study(n: int, instances: int = 3) -> dict[str, Any]:
    tags = {"PatientID": f"MRN{n:04}", "PatientName": f"DOE^PATIENT{n}", "PatientBirthDate": "19700101",
            "PatientSex": "F", "AccessionNumber": f"ACC{n:04}", "StudyInstanceUID": f"1.2.840.99.{n}",
            "StudyDate": "20200102", "StudyTime": "101010"}
    return {"tags": tags, "instances": [f"1.2.840.99.{n}.1.{i}" for i in range(instances)]}


@define(kw_only=True)
class MemoryPacs(Endpoint):
    name: str = "pacs"
    studies: dict[str, dict[str, Any]] = field(factory=dict)
    down_for: set[str] = field(factory=set)
    calls: list[str] = field(factory=list)

    def _oid(self, tags: dict[str, Any]) -> str:
        return orthanc_id(tags["PatientID"], tags["StudyInstanceUID"])

    def add(self, study: dict[str, Any]) -> None:
        self.studies[self._oid(study["tags"])] = study

    def find(self, query: Any, level: DicomLevel = DicomLevel.STUDIES, **kwargs: Any) -> list[Dixel]:
        self.calls.append("find")
        acc = query.get("AccessionNumber")
        if acc in self.down_for:
            raise EndpointUnavailable(f"{self.name}: connection refused")
        return [Dixel(tags=dict(s["tags"]), meta={"ID": oid}) for oid, s in self.studies.items()
                if all(s["tags"].get(k) == v for k, v in query.items())]

    def get(self, item: Any, level: DicomLevel = DicomLevel.STUDIES, view: DixelView = DixelView.TAGS,
            **kwargs: Any) -> Dixel:
        oid = item.oid() if isinstance(item, Dixel) else item
        if oid not in self.studies:
            raise NotFound(f"{self.name}: no study {oid}")
        study = self.studies[oid]
        if DixelView.FILE in view:
            # the study "archive" streamed to dest, as Orthanc streams /studies/{id}/archive
            with open(kwargs["dest"], "w", encoding="utf-8") as fh:
                json.dump(study, fh)
            return Dixel(meta={"ID": oid, "FileName": kwargs["dest"]}, level=DicomLevel.STUDIES)
        return Dixel(meta={"ID": oid}, tags=dict(study["tags"]))

    def anonymize(self, item: Any, level: DicomLevel = DicomLevel.STUDIES, replacement_map: Any = None,
                  **kwargs: Any) -> Dixel:
        study = self.studies[item.oid()]
        tags = {**{k: v for k, v in study["tags"].items() if k not in ("PatientBirthDate",)}, **replacement_map}
        new = {"tags": tags, "instances": [f"2.25.{abs(hash((replacement_map['StudyInstanceUID'], i)))}"
                                           for i in range(len(study["instances"]))]}
        self.add(new)
        return Dixel(tags=dict(tags), meta={"ID": self._oid(tags)})

    def delete(self, item: Any, level: DicomLevel = DicomLevel.STUDIES, **kwargs: Any) -> bool:
        return self.studies.pop(item.oid() if isinstance(item, Dixel) else item, None) is not None


@define(kw_only=True)
class MemoryArchive(Endpoint):
    name: str = "archive"
    stored: dict[str, dict[str, Any]] = field(factory=dict)
    puts: int = 0
    fail_after: int | None = None

    def put(self, item: Dixel, **kwargs: Any) -> int:
        if self.fail_after is not None and self.puts >= self.fail_after:
            raise KeyboardInterrupt("simulated kill")
        self.puts += 1
        with open(item.fn, encoding="utf-8") as fh:
            study = json.load(fh)
        tags = study["tags"]
        oid = orthanc_id(tags["PatientID"], tags["StudyInstanceUID"])
        existing = self.stored.setdefault(oid, {"tags": tags, "instances": []})
        existing["instances"].extend(study["instances"])
        return len(study["instances"])

    @property
    def pseudonymizes_on_write(self) -> bool:
        return False

    def put_pseudonymized(self, item: Dixel, pseudonymizer: Any = None, **kwargs: Any) -> int:
        """Pseudonymizing port, honestly: the study's identifiers from the plan, instance UIDs remapped."""
        with open(item.fn, encoding="utf-8") as fh:
            study = json.load(fh)
        tags = {k: v for k, v in study["tags"].items() if k != "PatientBirthDate"}
        study = {"tags": {**tags, **pseudonymizer.replacement_map(study["tags"])},
                 "instances": [pseudonymizer.remap_uid(uid) for uid in study["instances"]]}
        with open(item.fn, "w", encoding="utf-8") as fh:
            json.dump(study, fh)
        return self.put(item, **kwargs)

    def exists(self, item: Any, **kwargs: Any) -> bool:
        return (item.oid() if isinstance(item, Dixel) else item) in self.stored

    def delete(self, item: Any, **kwargs: Any) -> bool:
        return self.stored.pop(item.oid() if isinstance(item, Dixel) else item, None) is not None
