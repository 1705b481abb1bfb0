"""``diana jobs report``: per-study state, counts, timings, failures, de-identification summary, throughput chart."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from click.testing import CliRunner

from diana_core.cli import cli
from diana_core.errors import JobError
from diana_core.usecases.jobfiles import KeyFile
from diana_core.usecases.jobreport import job_report
from diana_core.usecases.journal import DONE, FAILED, Journal


@pytest.fixture
def job(tmp_path):
    """A job folder as the collector leaves it: 3 done (2 patients), 1 failed; written through its own classes."""
    folder = tmp_path / "job"
    journal = Journal(folder / "journal.sqlite")
    keys = KeyFile(folder / "key.csv")
    for n, (acc, patient) in enumerate([("ACC1", "P1"), ("ACC2", "P1"), ("ACC3", "P2")]):
        journal.mark(acc, DONE, dest_oid=f"oid-{n}", instances=10 + n)
        keys.add({"AccessionNumber": acc, "PatientID": patient, "PseudoPatientID": f"SHAM{patient}",
                  "PseudoAccessionNumber": f"PSEUDO{n}"})
    journal.mark("ACC4", FAILED, error="NotFound: no study for this AccessionNumber on pacs")
    journal.close()
    return folder


def test_report_counts_states_instances_failures_and_pseudonyms(job):
    report = job_report(job)
    assert report.studies == 4 and report.counts == {"done": 3, "failed": 1} and report.instances == 33
    assert report.failures == {"NotFound": 1}
    assert report.pseudonymized_studies == 3 and report.pseudonymized_patients == 2
    assert sum(n for _, n in report.throughput) == 3 and report.started and report.last_update
    assert [r.study for r in report.rows] == ["PSEUDO0", "PSEUDO1", "PSEUDO2", "-"]  # no accession numbers
    assert [r.study for r in job_report(job, show_ids=True).rows] == ["ACC1", "ACC2", "ACC3", "ACC4"]


def test_cli_csv_html_and_json(job, tmp_path):
    runner = CliRunner()
    res = runner.invoke(cli, ["jobs", "report", str(job), "--format", "csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert [r["state"] for r in rows] == ["done", "done", "done", "failed"] and rows[1]["instances"] == "11"
    assert "ACC" not in res.stdout and rows[3]["error"].startswith("NotFound")

    page = tmp_path / "r.html"
    res = runner.invoke(cli, ["jobs", "report", str(job), "-o", str(page)])
    html = page.read_text()
    assert res.exit_code == 0 and "<svg" in html and html.count('class="bar"') >= 1 and "ACC" not in html
    assert re.search(r"<th>pseudonymized_patients</th><td>2</td>", html)

    data = json.loads(runner.invoke(cli, ["--json", "jobs", "report", str(job)]).stdout)
    assert data["counts"] == {"done": 3, "failed": 1} and data["instances"] == 33 and "rows" not in data
    shown = runner.invoke(cli, ["--show-ids", "jobs", "report", str(job), "--format", "csv"]).stdout
    assert "ACC4" in shown


def test_not_a_job_folder_is_a_clear_error(tmp_path):
    with pytest.raises(JobError, match="not a job folder"):
        job_report(tmp_path)
    res = CliRunner().invoke(cli, ["jobs", "report", str(tmp_path)])
    assert res.exit_code == 1 and "not a job folder" in res.output and "Traceback" not in res.output
