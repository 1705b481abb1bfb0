"""CLI habits (#31): jobs report as text on a terminal, --show-ids after the command, one time format (ISO 8601 with
offset) across commands, and plugin commands that name the extra providing them. Real processes, a real pty."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from diana_core.usecases.jobfiles import KeyFile
from diana_core.usecases.jobstate import EmbeddedJobState
from diana_core.usecases.journal import DONE, FAILED

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?[+-]\d\d:\d\d$")


def diana(*args: str, cwd: Path, env: dict[str, str] | None = None, stdout=subprocess.PIPE):
    base = {k: v for k, v in os.environ.items() if k not in ("DIANA_SERVICES", "DIANA_LOG_FORMAT")}
    return subprocess.run([sys.executable, "-m", "diana_core", *args], stdout=stdout, stderr=subprocess.PIPE,
                          text=True, cwd=cwd, env={**base, **(env or {})}, timeout=120)


@pytest.fixture
def job(tmp_path):
    """A job folder as the collector leaves it: 2 done, 1 failed, with its start time."""
    state = EmbeddedJobState(tmp_path / "job")
    state.set_info(total=3, started=time.time() - 60, executor="local")
    keys = KeyFile(tmp_path / "job" / "key.csv")
    for n, acc in enumerate(["ACC1", "ACC2"]):
        state.mark(acc, DONE)
        keys.add({"AccessionNumber": acc, "PatientID": "P1", "PseudoPatientID": "SHAM",
                  "PseudoAccessionNumber": f"PSEUDO{n}"})
    state.mark("ACC3", FAILED, error="NotFound: no study")
    state.close()
    return tmp_path / "job"


def test_jobs_report_is_text_on_a_terminal_and_html_when_asked_or_redirected(job, tmp_path):
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "diana_core", "jobs", "report", str(job)], stdout=follower,
                              stderr=subprocess.PIPE, text=True, cwd=tmp_path, timeout=120,
                              env={**os.environ, "COLUMNS": "200"})
        os.close(follower)
        chunks = []
        while True:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(leader)
    text = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, proc.stderr
    assert "<html" not in text and "studies" in text and "PSEUDO0" in text and "NotFound 1" in text, text
    assert "ACC1" not in text
    assert "<!doctype html>" in diana("jobs", "report", str(job), cwd=tmp_path).stdout  # redirected: the page
    assert diana("jobs", "report", str(job), "-o", "r.html", cwd=tmp_path).returncode == 0
    assert (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    diana("jobs", "report", str(job), "-o", "r.csv", cwd=tmp_path)
    assert (tmp_path / "r.csv").read_text().splitlines()[0].startswith("row,")
    assert "<!doctype html>" in diana("jobs", "report", str(job), "--format", "html", cwd=tmp_path).stdout


def test_show_ids_is_accepted_after_the_subcommand_too(job, tmp_path):
    after = diana("jobs", "report", str(job), "--format", "csv", "--show-ids", cwd=tmp_path)
    before = diana("--show-ids", "jobs", "report", str(job), "--format", "csv", cwd=tmp_path)
    hidden = diana("jobs", "report", str(job), "--format", "csv", cwd=tmp_path)
    assert after.returncode == 0 and "ACC3" in after.stdout and after.stdout == before.stdout, after.stderr
    assert "ACC3" not in hidden.stdout
    (tmp_path / "pacs").mkdir()
    (tmp_path / "wl.csv").write_text("AccessionNumber\nSECRETACC9\n")
    shown = diana("collect", "wl.csv", "./pacs", "./research", "--job-dir", "cj", "--unkeyed", "--show-ids",
                  cwd=tmp_path)
    assert "no such option" not in shown.stderr and "SECRETACC9" in shown.stdout + shown.stderr


def test_one_time_format_across_commands(job, tmp_path):
    report = json.loads(diana("--json", "jobs", "report", str(job), cwd=tmp_path).stdout)
    status = json.loads(diana("--json", "jobs", "status", str(job), cwd=tmp_path).stdout)
    text_status = diana("jobs", "status", str(job), cwd=tmp_path, env={"COLUMNS": "200"})
    stamps = [report["started"], report["last_update"], report["throughput"][0][0], status["started"]]
    assert all(ISO.match(s) for s in stamps), stamps
    started = re.search(r"started:?\s*[│|]?\s*(\S+)", text_status.stdout + text_status.stderr)
    assert started and ISO.match(started.group(1)), text_status.stdout + text_status.stderr
    (tmp_path / "in").mkdir()
    logs = diana("-v", "--log-format", "json", "watch", "-r", "say", "./in", "-", "--max-seconds", "0.3",
                 cwd=tmp_path)
    records = [json.loads(x) for x in logs.stderr.splitlines() if x.startswith("{")]
    assert records and all(ISO.match(r["time"]) for r in records)


@pytest.mark.parametrize(("command", "extra"), [("worker", "celery"), ("export-png", "dcmdir")])
def test_plugin_commands_name_the_extra_that_provides_them(tmp_path, command, extra):
    out = diana(command, cwd=tmp_path, env={"DIANA_PLUGINS": ""})
    assert out.returncode == 2 and f"pip install 'diana-dicom[{extra}]'" in out.stderr, out.stderr
    assert "No such command" not in out.stderr
