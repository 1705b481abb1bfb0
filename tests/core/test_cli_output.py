"""Daemon-friendly output: plain/JSON log lines off a terminal, consistent --json, ids only with --show-ids."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

PLAIN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d (DEBUG|INFO|WARNING|ERROR) [\w.]+ \S.*$")


def diana(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DIANA_SERVICES", "DIANA_LOG_FORMAT")}
    env["XDG_CONFIG_HOME"] = str(cwd / "config")
    return subprocess.run([sys.executable, "-m", "diana_core", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


@pytest.fixture
def failing_job(tmp_path):
    (tmp_path / "pacs").mkdir()
    (tmp_path / "wl.csv").write_text("AccessionNumber\nSECRETACC42\n")
    return tmp_path


def test_off_a_terminal_each_log_record_is_one_plain_line(tmp_path):
    (tmp_path / "in").mkdir()
    out = diana("-v", "watch", "-r", "say", "./in", "-", "--max-seconds", "0.5", cwd=tmp_path)
    lines = [x for x in out.stderr.splitlines() if x.strip()]
    logged = [x for x in lines if PLAIN.match(x)]
    assert any("watcher started" in x for x in logged) and any("watcher stopped" in x for x in logged), out.stderr
    assert not any(x.startswith(" ") or "\x1b[" in x for x in lines), out.stderr  # no rich padding, no colour


def test_log_format_json_is_one_object_per_line(tmp_path):
    (tmp_path / "in").mkdir()
    out = diana("-v", "--log-format", "json", "watch", "-r", "say", "./in", "-", "--max-seconds", "0.5", cwd=tmp_path)
    records = [json.loads(x) for x in out.stderr.splitlines() if x.startswith("{")]
    assert records and all(set(r) == {"time", "level", "logger", "message"} for r in records)
    assert any(r["logger"] == "diana_core.usecases.watcher" and r["level"] == "INFO" for r in records)


def test_collect_json_has_the_table_keys_snake_case_and_numbers(failing_job):
    out = diana("--json", "collect", "wl.csv", "./pacs", "./research", "--job-dir", "job", cwd=failing_job)
    assert out.returncode == 1
    summary = json.loads(out.stdout)
    assert set(summary) == {"studies", "done", "skipped", "failed", "unverified", "instances", "seconds", "key_file", "failure_report",
                            "key_id", "profile", "quarantined", "deid_report"}  # pseudonymizing (#11): which key id
    assert summary["key_id"].startswith("k-") and os.environ["DIANA_PSEUDONYM_KEY"] not in out.stdout
    assert all(re.fullmatch(r"[a-z_]+", k) for k in summary)
    assert isinstance(summary["seconds"], float) and summary["failed"] == 1 and summary["studies"] == 1
    assert "SECRETACC42" not in out.stdout + out.stderr
    text = diana("collect", "wl.csv", "./pacs", "./research", "--job-dir", "job2", cwd=failing_job)
    table_keys = {m.group(1) for m in re.finditer(r"^  ([a-z_]+): ", text.stderr, re.M)}
    assert table_keys == set(summary), text.stderr  # the text summary shows the same keys


def test_failed_ids_reach_the_console_only_with_show_ids(failing_job):
    hidden = diana("collect", "wl.csv", "./pacs", "./research", "--job-dir", "job", cwd=failing_job)
    assert hidden.returncode == 1 and "SECRETACC42" not in hidden.stdout + hidden.stderr
    assert "1 failed; ids in job/failures.csv (or rerun with --show-ids)" in hidden.stderr
    assert "SECRETACC42" in (failing_job / "job" / "failures.csv").read_text()  # the failure report has them
    shown = diana("--show-ids", "collect", "wl.csv", "./pacs", "./research", "--job-dir", "job3", cwd=failing_job)
    assert "failed SECRETACC42: NotFound" in shown.stderr
    assert "SECRETACC42" in json.dumps(json.loads(diana("--show-ids", "--json", "collect", "wl.csv", "./pacs",
                                                       "./research", "--job-dir", "job4", cwd=failing_job).stdout))


def test_progress_off_a_terminal_is_a_plain_final_line(failing_job):
    out = diana("collect", "wl.csv", "./pacs", "./research", "--job-dir", "job", cwd=failing_job)
    assert re.search(r"^collect: 1/1 done 0 skipped 0 failed 1 [\d.]+/min \d+s$", out.stderr, re.M), out.stderr
    assert "━" not in out.stderr


def test_put_json_counts_failures_as_a_number_and_lists_them(tmp_path):
    from pydicom.data import get_testdata_file

    (tmp_path / "junk.dcm").write_text("not dicom")
    out = diana("--json", "put", "./dest", "junk.dcm", get_testdata_file("CT_small.dcm"), cwd=tmp_path)
    summary = json.loads(out.stdout)
    assert out.returncode == 1 and summary["done"] == 1 and summary["failed"] == 1
    assert summary["failures"][0]["item"] == "junk.dcm" and "not readable DICOM" in summary["failures"][0]["reason"]
    text = diana("put", "./dest2", "junk.dcm", get_testdata_file("CT_small.dcm"), cwd=tmp_path)
    assert "put 1, skipped 0, failed 1" in text.stdout and re.search(r"^put: 2/2 ", text.stderr, re.M), text.stderr


def test_on_a_terminal_the_progress_is_a_rich_bar(failing_job):
    """``script`` gives the command a real pseudo-terminal: the same run then draws a bar and a table."""
    import shlex

    cmd = shlex.join([sys.executable, "-m", "diana_core", "collect", "wl.csv", "./pacs", "./research", "--job-dir",
                      "job"])
    out = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, cwd=failing_job,
                         env={**os.environ, "XDG_CONFIG_HOME": str(failing_job / "config"), "COLUMNS": "120"},
                         timeout=120)
    assert "━" in out.stdout and "diana collect" in out.stdout and "failure_report" in out.stdout, out.stdout
    assert "SECRETACC42" not in out.stdout
