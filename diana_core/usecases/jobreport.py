"""A collection job's report from its folder (journal, key file): per-study state, counts, timings, failures,
de-identification summary and throughput over time. Read-only; works while the job runs and after it ended.

Worklist keys (accession numbers) appear only when asked (``show_ids``); otherwise a study is named by its row
number and its pseudonymized identifiers, so the report can be shared with people who must not see PHI.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from attrs import asdict, define, field

from diana_core import csvcells
from diana_core.errors import JobError
from diana_core.serialize import iso_time

STUDY_COLUMNS = ("row", "study", "state", "attempts", "instances", "updated", "pseudo_accession", "dest_oid", "error")


@define
class StudyRow:
    """One worklist item: ``study`` is its key with ``show_ids``, else the pseudonymized accession (or "-")."""

    row: int
    study: str
    state: str
    attempts: int
    instances: int
    updated: str
    pseudo_accession: str
    dest_oid: str
    error: str


@define
class JobReport:
    """Everything ``diana jobs report`` shows; ``throughput`` = [(bucket start ISO time, studies done)].

    Fields:
        job: The job folder's name.
        studies: Worklist items in the job.
        counts: Items by state (done, failed, sending, pending...).
        instances: Instances moved (as counted at the destination).
        started: When the job started (ISO 8601 with offset).
        last_update: When the journal last changed.
        seconds: Seconds between the two.
        studies_per_minute: Studies done per minute.
        bucket_seconds: Width of a throughput bucket.
        throughput: [bucket start, studies done] pairs for the chart.
        failures: Failed items by kind of error.
        pseudonymized_studies: Studies with a key row.
        pseudonymized_patients: Distinct pseudonymized patients.
        key_file: Where the key file (original to pseudonym, owner-only) is.
        rows: Per-study rows (the report and CSV; not in status.json).
    """

    job: str
    studies: int = 0
    counts: dict[str, int] = field(factory=dict)
    instances: int = 0
    started: str | None = None
    last_update: str | None = None
    seconds: float = 0.0
    studies_per_minute: float = 0.0
    bucket_seconds: int = 60
    throughput: list[tuple[str, int]] = field(factory=list)
    failures: dict[str, int] = field(factory=dict)
    pseudonymized_studies: int = 0
    pseudonymized_patients: int = 0
    key_file: str | None = None
    rows: list[StudyRow] = field(factory=list)

    def summary(self) -> dict[str, Any]:
        """The report without its per-study rows (what ``--json`` and the HTML header show)."""
        data = asdict(self)
        data.pop("rows")
        data["throughput"] = [list(b) for b in self.throughput]
        return data


def _iso(ts: float | None) -> str:
    return iso_time(ts) if ts else ""


def _journal_rows(journal: Path) -> list[tuple[Any, ...]]:
    try:
        conn = sqlite3.connect(f"file:{journal}?mode=ro", uri=True)
        try:
            return conn.execute("SELECT key, status, attempts, source_oid, dest_oid, instances, error, updated "
                                "FROM items ORDER BY key").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise JobError(f"job journal {journal} cannot be read: {exc}") from exc


def job_report(job_dir: str | Path, show_ids: bool = False, key: str = "AccessionNumber") -> JobReport:
    """Read ``job_dir``'s journal.sqlite (and key.csv) into a ``JobReport``."""
    folder = Path(job_dir)
    journal = folder / "journal.sqlite"
    if not journal.is_file():
        raise JobError(f"{folder} is not a job folder (no journal.sqlite): give the --job-dir of a collect run")
    items = _journal_rows(journal)
    keys: dict[str, dict[str, str]] = {}
    key_file = folder / "key.csv"
    if key_file.is_file():
        with key_file.open(encoding="utf-8", newline="") as fh:
            for row in csvcells.read_dicts(fh):
                keys[row.get(key) or next(iter(row.values()), "")] = row
    report = JobReport(job=folder.name, studies=len(items), key_file=str(key_file) if keys else None)
    report.counts = dict(Counter(status for _, status, *_ in items))
    done_times: list[float] = []
    for n, (k, status, attempts, _src, dest_oid, instances, error, updated) in enumerate(items, start=1):
        mapping = keys.get(k, {})
        report.rows.append(StudyRow(row=n, study=k if show_ids else mapping.get("PseudoAccessionNumber") or "-",
                                    state=status, attempts=attempts or 0, instances=instances or 0,
                                    updated=_iso(updated), pseudo_accession=mapping.get("PseudoAccessionNumber", ""),
                                    dest_oid=dest_oid or "", error=error or ""))
        report.instances += instances or 0
        if status == "done" and updated:
            done_times.append(updated)
        if error and status == "failed":
            reason = error.split(":", 1)[0]  # the error class: a count per kind, no ids
            report.failures[reason] = report.failures.get(reason, 0) + 1
    report.pseudonymized_studies = len(keys)
    report.pseudonymized_patients = len({r.get("PseudoPatientID") for r in keys.values() if r.get("PseudoPatientID")})
    stamps = [u for *_, u in items if u]
    set_times(report, min(stamps, default=None), max(stamps, default=None), done_times)
    return report


def set_times(report: JobReport, first: float | None, last: float | None, done_times: list[float]) -> None:
    """The report's start, last update and duration (from the first and last journal stamps), and its rate and
    throughput buckets (from the times studies were done)."""
    if first:
        report.started, report.last_update = _iso(first), _iso(last)
        report.seconds = round((last or first) - first, 1)
    if done_times:
        span = max(max(done_times) - min(done_times), 1.0)
        report.studies_per_minute = round(len(done_times) / span * 60, 2) if len(done_times) > 1 else 0.0
        report.bucket_seconds = _bucket(span)
        report.throughput = _buckets(done_times, report.bucket_seconds)


def _bucket(span: float) -> int:
    """A bucket width giving about 10-60 bars: 1 s .. 1 day."""
    for width in (1, 5, 10, 30, 60, 300, 600, 1800, 3600, 21600, 86400):
        if span / width <= 60:
            return width
    return 86400


def _buckets(times: list[float], width: int) -> list[tuple[str, int]]:
    start = int(min(times) // width * width)
    counts = Counter(int((t - start) // width) for t in times)
    return [(_iso(start + i * width), counts.get(i, 0)) for i in range(max(counts) + 1)]


def write_csv(report: JobReport, fh: Any) -> None:
    """Per-study rows as CSV (header = STUDY_COLUMNS)."""
    writer = csvcells.Writer(fh)
    writer.writerow(STUDY_COLUMNS)
    for r in report.rows:
        writer.writerow([getattr(r, c) for c in STUDY_COLUMNS])
