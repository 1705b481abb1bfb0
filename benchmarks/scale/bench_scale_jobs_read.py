"""Scale run 2b: the read side and the resume of a 100,000-study collect job, without moving 100,000 studies.

Builds a job folder as ``diana collect`` leaves it after a 100,000-study job (``--studies``): the journal through
Diana's own ``Journal`` schema (rows written in one transaction here; a real run fsyncs each), the key file by
``write_key_file``, ``job.json`` by ``EmbeddedJobState``. Then times, as a user meets them (fresh processes):
``diana jobs status``, ``diana jobs report`` (HTML), ``/status.json`` of ``diana serve`` (first and later requests),
and a rerun of ``diana collect`` over the same worklist (every study done: what a resume pays before its first new
study), CPU seconds of each child included.

    nice -n 10 .venv/bin/python benchmarks/scale/bench_scale_jobs_read.py --base /tmp/scale-jobs
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from diana_core.usecases.jobfiles import write_key_file
from diana_core.usecases.jobstate import EmbeddedJobState
from diana_core.usecases.journal import Journal

DIANA = str(Path(sys.executable).parent / "diana")


def timed(args: list[str], cwd: Path) -> dict[str, Any]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([DIANA, *args], cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3), "exit": out.returncode, "stdout": out.stdout[-400:]}


def build(job: Path, n: int) -> None:
    Journal(job / "journal.sqlite").close()  # the schema as the collector creates it
    t0 = time.time() - n * 0.05
    with sqlite3.connect(job / "journal.sqlite") as db:
        db.executemany("INSERT INTO items (key, status, attempts, source_oid, dest_oid, instances, updated) "
                       "VALUES (?, 'done', 1, ?, ?, 1, ?)",
                       ((f"A{i:09d}", f"{i:08x}-src", f"{i:08x}-dst", t0 + i * 0.05) for i in range(n)))
    rows = [{"AccessionNumber": f"A{i:09d}", "PatientID": f"P{i // 3:09d}", "StudyInstanceUID": f"1.2.3.{i}",
             "PseudoPatientID": f"PP{i // 3}", "PseudoPatientName": "SHAM", "PseudoAccessionNumber": f"PA{i}",
             "PseudoStudyInstanceUID": f"2.25.{i}", "DestOID": f"{i:08x}-dst"} for i in range(n)]
    write_key_file(job / "key.csv", rows, "AccessionNumber")
    state = EmbeddedJobState(job)
    state.set_info(kind="collect", project="scale", total=n, started=t0, finished=t0 + n * 0.05, executor="local",
                   folder=str(job))
    state.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--studies", type=int, default=100_000)
    ap.add_argument("--base", required=True)
    ap.add_argument("--out", default="benchmarks/results/scale_jobs_read.json")
    args = ap.parse_args()
    base = Path(args.base)
    job = base / "job"
    (base / "pacs").mkdir(parents=True, exist_ok=True)
    (base / "dest").mkdir(exist_ok=True)
    if not (job / "journal.sqlite").exists():
        build(job, args.studies)
    (base / "worklist.txt").write_text("".join(f"A{i:09d}\n" for i in range(args.studies)))
    (base / "services.yml").write_text(f"pacs: {{ctype: DcmDir, path: {base / 'pacs'}}}\n"
                                       f"dest: {{ctype: DcmDir, path: {base / 'dest'}}}\n")
    report: dict[str, Any] = {"studies": args.studies, "load_before": os.getloadavg(),
                              "journal_mib": round((job / "journal.sqlite").stat().st_size / 2**20, 1),
                              "key_csv_mib": round((job / "key.csv").stat().st_size / 2**20, 1)}
    report["jobs_status"] = timed(["jobs", "status", str(job), "--json"], base)
    report["jobs_report_html"] = timed(["jobs", "report", str(job), "-o", str(base / "report.html")], base)
    report["report_html_mib"] = round((base / "report.html").stat().st_size / 2**20, 1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    serve = subprocess.Popen([DIANA, "serve", str(job), "--port", str(port)], stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/status.json"
        for _ in range(200):
            try:
                requests.get(url, timeout=60)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            assert requests.get(url, timeout=120).json()["jobs"][0]["counts"]["done"] == args.studies
            times.append(round(time.perf_counter() - t0, 3))
        report["status_json_s"] = times  # the first request after start reads the whole key file once
    finally:
        serve.terminate()
        serve.wait()
    os.environ.setdefault("DIANA_PSEUDONYM_KEY", "scale-benchmark-key-not-secret")
    report["resume_all_done"] = timed(["-s", "services.yml", "collect", "worklist.txt", "pacs", "dest", "--job-dir",
                                       str(job), "--no-anonymize"], base)
    report["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
