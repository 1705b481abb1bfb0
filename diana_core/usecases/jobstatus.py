"""Progress of a job from its ``JobState``, whichever executor runs it: counts by state, rate, ETA, per worker.

Read-only: works while the job runs (another process writes the state) and after it ended.
"""

from __future__ import annotations

import time
from typing import Any

from attrs import define, field

from diana_core.execution import JobState

RECENT = 300.0  # seconds of recent completions the rate is measured over while a job runs


@define
class JobStatus:
    """Where a job stands; ``rate`` is studies per minute, ``eta`` seconds until the rest is done at that rate."""

    job: str
    executor: str = "local"
    total: int = 0
    counts: dict[str, int] = field(factory=dict)
    per_worker: dict[str, int] = field(factory=dict)
    started: float | None = None
    finished: float | None = None
    rate: float = 0.0
    eta: float | None = None

    @property
    def remaining(self) -> int:
        settled = self.counts.get("done", 0) + self.counts.get("failed", 0)
        return max(self.total - settled, 0)


def job_status(state: JobState, now: float | None = None) -> JobStatus:
    """Summarize ``state`` (its ``info()`` facts and ``done_times()``) at time ``now``."""
    now = time.time() if now is None else now
    info: dict[str, Any] = state.info()
    status = JobStatus(job=state.job, executor=str(info.get("executor", "local")), total=int(info.get("total") or 0),
                       counts=state.counts(), started=_num(info.get("started")), finished=_num(info.get("finished")))
    times = state.done_times()
    for _, worker in times:
        status.per_worker[worker] = status.per_worker.get(worker, 0) + 1
    if times and status.started is not None:
        if status.finished is not None and status.finished >= status.started:
            span = max(status.finished - status.started, 1e-6)
            status.rate = len(times) / span * 60
        else:
            window = min(RECENT, max(now - status.started, 1e-6))
            recent = sum(t >= now - window for t, _ in times)
            status.rate = recent / window * 60
    if status.finished is None and status.rate > 0:
        status.eta = status.remaining / status.rate * 60
    return status


def _num(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
