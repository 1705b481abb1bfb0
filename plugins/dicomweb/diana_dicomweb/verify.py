"""Stored means found: what a STOW answer lists as stored is looked up with QIDO before it counts.

Some servers list instances they refused as stored (Orthanc 1.10's DICOMweb plugin does, for one its filter
rejected), so ``put`` trusts the answer only for failures. One QIDO count per study settles it when the study holds exactly
what was sent; otherwise (short, or holding other instances too) the study is listed to name what is missing.
"""

from __future__ import annotations

from typing import Any

from diana_core.dicom import DicomLevel
from diana_core.ports import BulkResult

NOT_FOUND = "listed as stored by the server, but QIDO does not find it (refused by the archive?)"


def confirmed(endpoint: Any, result: BulkResult, stored: list[str], studies: dict[str, str]) -> tuple[BulkResult,
                                                                                                      list[str]]:
    """(counts, stored SOP UIDs) keeping only what QIDO finds; the others move to the failed list."""
    by_study: dict[str, set[str]] = {}
    alone: list[str] = []
    for sop in stored:
        if sop in studies:
            by_study.setdefault(studies[sop], set()).add(sop)
        else:
            alone.append(sop)
    present: set[str] = set()
    for study, sops in by_study.items():
        if endpoint.count_instances(study, level=DicomLevel.STUDIES) == len(sops):
            present |= sops  # one cheap count per study; listed only when it differs (short, or other instances)
            continue
        found = endpoint.find({"StudyInstanceUID": study}, level=DicomLevel.INSTANCES, fields=["SOPInstanceUID"])
        present |= {str(d.tag("SOPInstanceUID")) for d in found} & sops
    for sop in alone:  # the server named no study: one lookup per instance
        if next(iter(endpoint.find({"SOPInstanceUID": sop}, level=DicomLevel.INSTANCES, limit=1)), None) is not None:
            present.add(sop)
    kept = [sop for sop in stored if sop in present]
    missing = [(sop, NOT_FOUND) for sop in stored if sop not in present]
    return BulkResult(done=len(kept), skipped=result.skipped, failed=[*result.failed, *missing]), kept
