"""The status page's job summary (#32): the same numbers as ``jobs report``, without building a row per study, and
with the key file read incrementally, so a page polled every second stays cheap at 100,000 studies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from diana_core import csvcells
from diana_core.cli.serve import JobsView
from diana_core.usecases.jobfiles import KeyFile, write_key_file
from diana_core.usecases.jobreport import job_report
from diana_core.usecases.jobsummary import job_summary
from diana_core.usecases.journal import DONE, FAILED, SENDING, Journal


def add_done(journal: Journal, keys: KeyFile, start: int, stop: int) -> None:
    for n in range(start, stop):
        journal.mark(f"ACC{n}", DONE, dest_oid=f"oid-{n}", instances=1 + n % 3)
        keys.add({"AccessionNumber": f"ACC{n}", "PatientID": f"P{n % 7}", "PseudoPatientID": f"SHAM{n % 7}",
                  "PseudoAccessionNumber": f"PSEUDO{n}"})


@pytest.fixture
def job(tmp_path: Path) -> Path:
    folder = tmp_path / "job"
    journal, keys = Journal(folder / "journal.sqlite"), KeyFile(folder / "key.csv")
    add_done(journal, keys, 0, 40)
    journal.mark("ACC-X", FAILED, error="NotFound: no study for this AccessionNumber on pacs")
    journal.mark("ACC-Y", FAILED, error="IncompleteStudy: 3 of 4")
    journal.mark("ACC-Z", SENDING)
    journal.close()
    return folder


def test_summary_equals_the_reports_header(job: Path) -> None:
    summary = job_summary(job).summary()
    assert summary == job_report(job).summary()
    assert summary["counts"] == {"done": 40, "failed": 2, "sending": 1} and summary["instances"] == 79
    assert summary["failures"] == {"NotFound": 1, "IncompleteStudy": 1}
    assert (summary["pseudonymized_studies"], summary["pseudonymized_patients"]) == (40, 7)
    assert job_summary(job).rows == []


def test_the_status_page_reads_only_new_key_rows(job: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[int] = []
    real = csvcells.read_dicts

    def counting(fh: Any) -> Any:
        for row in real(fh):
            parsed.append(1)
            yield row

    monkeypatch.setattr(csvcells, "read_dicts", counting)
    view = JobsView([str(job)])
    assert view.status()["jobs"][0]["pseudonymized_studies"] == 40
    assert view.status()["jobs"][0]["pseudonymized_studies"] == 40
    assert len(parsed) == 40  # the second request parsed no key row again (it was 80 when each built the report)
    journal, keys = Journal(job / "journal.sqlite"), KeyFile(job / "key.csv")
    add_done(journal, keys, 40, 45)
    journal.close()
    parsed.clear()
    first = view.status()["jobs"][0]
    assert (first["pseudonymized_studies"], first["counts"]["done"], len(parsed)) == (45, 45, 5)
    # the key file rewritten (a rerun merges it): read again from the start
    rows = list(real((job / "key.csv").open(encoding="utf-8", newline="")))[:10]
    (job / "key.csv").unlink()
    write_key_file(job / "key.csv", rows, "AccessionNumber")
    assert view.status()["jobs"][0]["pseudonymized_studies"] == 10


def test_jobs_status_does_not_read_the_key_file(job: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``diana jobs status`` opened the job state, whose key file was read whole at construction (~0.5 s at
    100,000 studies) though status never uses it; it is now read on the first key row added."""
    from diana_core.usecases.jobstate import EmbeddedJobState
    from diana_core.usecases.jobstatus import job_status

    parsed: list[int] = []
    real = csvcells.read_dicts

    def counting(fh: Any) -> Any:
        for row in real(fh):
            parsed.append(1)
            yield row

    monkeypatch.setattr(csvcells, "read_dicts", counting)
    state = EmbeddedJobState(job)
    assert job_status(state).counts == {"done": 40, "failed": 2, "sending": 1}
    assert parsed == []
    state.add_key_row({"AccessionNumber": "ACC3", "PseudoPatientID": "SHAM3"})  # known: not written twice
    state.add_key_row({"AccessionNumber": "ACC-NEW", "PseudoPatientID": "SHAM9"})
    state.close()
    assert len(parsed) == 40
    assert [line.split(",")[0] for line in (job / "key.csv").read_text().splitlines()].count("ACC3") == 1
    assert job_summary(job).pseudonymized_studies == 41
