"""What a collection run reports: ``CollectResult`` (counts and failures by worklist key) and the ``Tally`` that
fills it from each study unit's result, writing the unit's audit line and reporting progress on the way."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from attrs import define, field

from diana_core.execution import JobState, UnitResult

# the collector's records: a job's lines come from one logger, whichever module writes them
logger = logging.getLogger("diana_core.usecases.collector")

Progress = Callable[[str, str, dict[str, int]], None]
"""progress(outcome, key, counts): outcome is done | skipped | failed | resolved."""


@define
class CollectResult:
    """Summary of one run (counts and failures name worklist keys, which stay in the job folder)."""

    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(factory=dict)
    instances: int = 0
    seconds: float = 0.0
    key_file: str | None = None
    failure_report: str | None = None
    dry_run: bool = False
    key_id: str | None = None  # fingerprint of the pseudonym key (never the key); None when not pseudonymizing
    profile: str | None = None
    deid_report: str | None = None  # deidentification.json in the job folder
    quarantined: int = 0
    unverified: int = 0  # studies done or skipped at a destination that cannot count what it holds

    @property
    def ok(self) -> bool:
        return not self.failed


def is_transient_failure(reason: str | None) -> bool:
    """A failure worth another pass: the endpoint was unreachable or the study arrived short (not refused
    credentials, not bad data)."""
    return bool(reason) and str(reason).startswith(("EndpointUnavailable", "IncompleteStudy"))


@define
class Tally:
    """Counts each unit's outcome into ``result``, writes its line to the audit trail and reports progress."""

    result: CollectResult
    state: JobState
    trail: Any  # diana_core.audit.AuditTrail
    rows: Mapping[str, int]  # worklist key -> row number: logs name rows, never keys
    progress: Progress | None = None

    def __call__(self, res: UnitResult, entry: Any = None) -> None:
        result = self.result
        entry = entry if entry is not None else self.state.get(res.key)
        # a skipped study disclosed nothing: its line is written but not fsynced on its own (the next
        # disclosure's or the finish line's fsync carries it), so a resume does not pay a disk sync per done study
        self.trail.item(res.outcome, res.count, getattr(entry, "dest_oid", None), self.rows.get(res.key), res.key,
                        res.error, durable=res.outcome != "skipped")
        if res.outcome == "failed":
            result.failed[res.key] = res.error or "failed"
            logger.warning("worklist row %d failed: %s", self.rows.get(res.key, 0), (res.error or "").split(":")[0])
        elif res.outcome == "done":
            result.done += 1
            result.instances += res.count
            result.unverified += res.counters.get("unverified", 0)
        elif res.outcome == "skipped":
            result.skipped += 1
            result.unverified += res.counters.get("unverified", 0)
        elif res.outcome == "resolved":
            result.done += 1
        if self.progress:
            self.progress(res.outcome, res.key, {"done": result.done, "skipped": result.skipped,
                                                 "failed": len(result.failed), "total": result.total})
