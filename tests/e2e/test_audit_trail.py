"""The audit trail (#26): ``audit.jsonl`` in a collect job folder and in the trail of ``watch`` / ``put``, hash-chained,
printed by ``diana jobs audit`` (text, CSV for an IRB), checked by ``--verify``; identifiers only with --show-ids."""

from __future__ import annotations

import csv
import getpass
import io
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from diana_orthanc.testdata import ct_dataset

ACCESSIONS = ["ACC00010000", "ACC00020000"]


def diana(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DIANA_SERVICES", "DIANA_LOG_FORMAT")}
    env.update(XDG_CONFIG_HOME=str(cwd / "config"), XDG_STATE_HOME=str(cwd / "state"))
    return subprocess.run([sys.executable, "-m", "diana_core", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A folder PACS of two 3-instance studies, a worklist of them and one accession it lacks."""
    (tmp_path / "pacs").mkdir()
    for p in (1, 2):
        for i in range(3):
            ct_dataset(i, patient=p, run="audit").save_as(tmp_path / "pacs" / f"PATIENT{p}_{i}.dcm",
                                                          enforce_file_format=True)
    (tmp_path / "wl.csv").write_text("AccessionNumber\n" + "\n".join([*ACCESSIONS, "MISSING99"]) + "\n")
    return tmp_path


def collect(site: Path, job: str, *flags: str) -> list[dict]:
    secret = "{vault: {ctype: Orthanc, host: 127.0.0.1, port: 1, user: u, password: hunter2secret}}"
    out = diana(*flags, "-s", secret, "collect", "wl.csv", "./pacs", "./research", "--anonymize", "--job-dir", job,
                cwd=site)
    assert out.returncode == 1 and "MISSING99" in (site / job / "failures.csv").read_text(), out.stderr
    return [json.loads(line) for line in (site / job / "audit.jsonl").read_text().splitlines()]


def test_collect_writes_a_chained_trail_without_identifiers(site):
    records = collect(site, "job")
    path = site / "job" / "audit.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    start, *items, finish = records
    assert start["event"] == "start" and start["command"] == "collect"
    assert start["user"] == getpass.getuser() and start["host"] == socket.gethostname()
    assert start["source"] == "./pacs" and start["dest"] == "./research" and start["key_id"].startswith("k-")
    assert start["profile"].startswith("basic") and "hunter2secret" not in json.dumps(start)
    assert "password: ***" in " ".join(start["argv"]) and start["show_ids"] is False
    assert sorted(r["outcome"] for r in items) == ["done", "done", "failed"]
    done = [r for r in items if r["outcome"] == "done"]
    assert [r["instances"] for r in done] == [3, 3] and all(len(r["study"]) == 44 for r in done)  # dest Orthanc ids
    assert finish["counts"] == {"done": 2, "skipped": 0, "failed": 1, "instances": 6}
    text = path.read_text()
    for ident in (*ACCESSIONS, "MISSING99", "PATIENT1", "TEST^PATIENT", "os.environ"):
        assert ident not in text, ident
    assert records[0]["prev"] == "0" * 64 and all(r["prev"] != records[0]["prev"] for r in records[1:])

    ok = diana("jobs", "audit", "job", "--verify", cwd=site)
    assert ok.returncode == 0 and f"intact: {len(records)} lines" in ok.stdout, ok.stderr
    shown = diana("jobs", "audit", "job", cwd=site)
    assert shown.returncode == 0 and len(shown.stdout.splitlines()) == len(records)
    irb = diana("jobs", "audit", "job", "--format", "csv", cwd=site)
    rows = list(csv.DictReader(io.StringIO(irb.stdout)))
    assert len(rows) == len(records) and {r["user"] for r in rows} == {getpass.getuser()}
    assert sorted(r["instances"] for r in rows if r["outcome"] == "done") == ["3", "3"]
    assert all(r["key_id"] == start["key_id"] for r in rows) and "hunter2secret" not in irb.stdout


def test_editing_one_line_makes_verify_fail_naming_it(site):
    records = collect(site, "job")
    path = site / "job" / "audit.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    edited = list(lines)
    edited[2] = edited[2].replace('"instances":3', '"instances":30').replace('"instances":0', '"instances":1')
    assert edited[2] != lines[2]
    path.write_text("".join(edited))
    bad = diana("jobs", "audit", "job", "--verify", cwd=site)
    assert bad.returncode == 1 and "line 3 was altered" in bad.stdout + bad.stderr, bad.stdout + bad.stderr
    path.write_text("".join(lines[:1] + lines[2:]))  # a line removed
    gone = diana("--json", "jobs", "audit", "job", "--verify", cwd=site)
    assert gone.returncode == 1 and json.loads(gone.stdout)["line"] == 2, gone.stdout
    path.write_text("".join(lines))
    assert diana("jobs", "audit", "job", "--verify", cwd=site).returncode == 0
    assert len(records) == len(lines)


def test_a_rerun_appends_to_the_same_chain_and_show_ids_keeps_the_keys(site):
    collect(site, "job")
    records = collect(site, "job", "--show-ids")
    runs = {r["run"] for r in records}
    assert len(runs) == 2 and [r["event"] for r in records].count("start") == 2
    second = [r for r in records if r["run"] == records[-1]["run"]]
    assert {r.get("original") for r in second if r["event"] == "item"} == {*ACCESSIONS, "MISSING99"}
    assert sorted(r["outcome"] for r in second if r["event"] == "item") == ["failed", "skipped", "skipped"]
    assert diana("jobs", "audit", "job", "--verify", cwd=site).returncode == 0


def test_watch_and_put_write_the_users_trail(site):
    import time

    files = sorted((site / "pacs").iterdir())[:2]
    put = diana("put", "./out", *(str(p) for p in files), "--anonymize", cwd=site)
    assert put.returncode == 0, put.stderr
    trail = site / "state" / "diana" / "audit.jsonl"
    records = [json.loads(line) for line in trail.read_text().splitlines()]
    assert [r["event"] for r in records] == ["start", "finish"] and records[-1]["counts"]["done"] == 2
    assert records[0]["key_id"].startswith("k-") and "PATIENT1" not in trail.read_text()  # file names hashed in argv

    inbox = site / "inbox"
    inbox.mkdir()
    services = site / "services.yml"
    services.write_text(f"inbox: {{ctype: ObservableDcmDir, path: {inbox}, settle_interval: 0.05, "
                        f"polling_interval: 0.05}}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DIANA_SERVICES", "DIANA_LOG_FORMAT")}
    audit = site / "watch-audit.jsonl"
    log = site / "watch.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "diana_core", "-v", "-s", str(services), "watch", "-r", "say",
                                 "inbox", "-", "--max-seconds", "6", "--audit", str(audit), "--interval", "0.1"],
                                cwd=site, env=env, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 30
        while "watching its folder" not in log.read_text():  # the folder's observer is up
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.05)
        for f in files:
            (site / "x.tmp").write_bytes(f.read_bytes())
            (site / "x.tmp").rename(inbox / f.name)
        assert proc.wait(timeout=60) == 0, log.read_text()
    lines = [json.loads(x) for x in audit.read_text().splitlines()]
    handled = [r for r in lines if r.get("outcome") == "handled"]
    assert lines[0]["command"] == "watch" and lines[-1]["event"] == "finish" and len(handled) == 2, lines
    assert all(r["original"].startswith("id:") and r["route"] for r in handled) and "PATIENT" not in json.dumps(lines)
    assert diana("jobs", "audit", str(audit), "--verify", cwd=site).returncode == 0
