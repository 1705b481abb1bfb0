"""A folder's study index answers a find by AccessionNumber / StudyInstanceUID without reading every study (#32:
the Collector resolves each worklist item this way, so a scan per study made a 100k-study job quadratic)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from diana_core import DicomLevel
from diana_dcmdir import DcmDir
from diana_dcmdir.studies import StudyIndex


def generate_uid() -> str:
    return f"2.25.{uuid.uuid4().int}"


class CountingTags(dict[str, Any]):
    """Study tags that count how often find reads them."""

    reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        CountingTags.reads += 1
        return super().get(key, default)


def test_find_by_accession_reads_only_the_matching_study() -> None:
    index = StudyIndex()
    for n in range(20_000):
        index.add({"PatientID": f"P{n % 97}", "StudyInstanceUID": f"1.2.3.{n}", "AccessionNumber": f"A{n}",
                   "Modality": "CT"}, f"/pacs/{n}.dcm")
    for entry in index.entries.values():
        entry.tags = CountingTags(entry.tags)
    CountingTags.reads = 0
    found = index.find({"AccessionNumber": "A12345", "StudyDate": ""})
    assert [d.tag("StudyInstanceUID") for d in found] == ["1.2.3.12345"]
    assert CountingTags.reads <= 2  # the one candidate's tags, not 20,000 studies'
    assert index.find({"AccessionNumber": "A-none"}) == []
    assert index.paths_of("1.2.3.777") == ["/pacs/777.dcm"]
    # a query on a tag without a lookup still scans (and still answers)
    assert len(index.find({"PatientID": "P3", "StudyDescription": ""})) == len(range(3, 20_000, 97))


def test_lookups_follow_deletes_and_rewrites(tmp_path: Any, make_dicom: Callable[..., bytes]) -> None:
    folder = DcmDir(path=str(tmp_path))
    study_a, study_b = generate_uid(), generate_uid()
    series = generate_uid()
    files = []
    for n, (study, acc) in enumerate([(study_a, "ACC-A"), (study_a, "ACC-A"), (study_b, "ACC-B")]):
        name = tmp_path / f"f{n}.dcm"
        name.write_bytes(make_dicom(study, series + f".{n}", generate_uid(), phi={"AccessionNumber": acc}))
        files.append(str(name))
    found = list(folder.find({"AccessionNumber": "ACC-A"}, level=DicomLevel.STUDIES))
    assert [d.tag("StudyInstanceUID") for d in found] == [study_a]
    assert found[0].meta["InstanceCount"] == 2
    assert folder.studies().paths_of(study_a) == sorted(files[:2])
    # one instance removed: the study stays with one file; both removed: the study is gone from every lookup
    assert folder.delete(folder.get(files[0]))
    assert folder.studies().paths_of(study_a) == [files[1]]
    assert folder.delete(folder.get(files[1]))
    assert list(folder.find({"AccessionNumber": "ACC-A"}, level=DicomLevel.STUDIES)) == []
    assert folder.studies().paths_of(study_a) == []
    assert [d.tag("AccessionNumber") for d in folder.find({"AccessionNumber": "ACC-B"}, level="studies")] == ["ACC-B"]
    # a path re-added under another study moves to it (the old study, left without files, disappears)
    index = folder.studies()
    index.add({"PatientID": "X", "StudyInstanceUID": study_a, "AccessionNumber": "ACC-A"}, files[2])
    assert index.paths_of(study_b) == []
    assert index.find({"AccessionNumber": "ACC-B"}) == []
    assert index.paths_of(study_a) == [files[2]]
