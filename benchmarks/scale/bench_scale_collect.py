"""Scale run 2: ``diana collect`` of N accession numbers (default 100,000) from a DcmDir "PACS" of generated
one-instance studies (headers + 2x2 pixels) into a DcmDir folder, killed with SIGKILL at ``--kill-at`` of the way
and run again; while it runs, ``diana jobs status``, ``diana jobs report`` and the status page of ``diana serve``
are timed against the live job folder.

Per-study overhead: from the journal's own DONE times, seconds per ``--chunk`` studies, first vs last chunk (the
chunk across the kill and restart is reported apart). Resume: seconds the rerun spends before its first new study
(skipping what is done) and how many studies it re-sent. ``--budget`` (minutes) stops the job where it stands and
reports how far it got, so the run fits the time there is.

    nice -n 10 .venv/bin/python benchmarks/scale/bench_scale_collect.py --studies 100000 --base /tmp/scale-col
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).parent))
from headers import accession, write_tree  # noqa: E402

DIANA = str(Path(sys.executable).parent / "diana")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def timed(args: list[str], cwd: str) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, stdout) of one ``diana`` command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run([DIANA, *args], cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return round(wall, 3), round(cpu, 3), out.stdout


def done_times(job: Path) -> list[float]:
    try:
        with sqlite3.connect(f"file:{job / 'journal.sqlite'}?mode=ro", uri=True) as db:
            return sorted(t for (t,) in db.execute("SELECT updated FROM items WHERE status = 'done'"))
    except sqlite3.Error:
        return []


def done_count(job: Path) -> int:
    try:
        with sqlite3.connect(f"file:{job / 'journal.sqlite'}?mode=ro", uri=True) as db:
            return int(db.execute("SELECT count(*) FROM items WHERE status = 'done'").fetchone()[0])
    except sqlite3.Error:
        return 0


def probe(work: str, job: Path, status_url: str) -> dict[str, Any]:
    """Time the read side as a user meets it: jobs status, jobs report (HTML to a file), the status page."""
    if not (job / "journal.sqlite").exists():
        return {"at": round(time.time(), 1), "done": 0, "note": "no journal yet"}
    s_time, s_cpu, s_out = timed(["jobs", "status", str(job), "--json"], work)
    r_time, r_cpu, _ = timed(["jobs", "report", str(job), "-o", str(Path(work) / "report.html")], work)
    t0 = time.perf_counter()
    page = requests.get(status_url, timeout=120)
    p_time = round(time.perf_counter() - t0, 3)
    try:
        counts = json.loads(s_out).get("counts", {})
    except ValueError:
        counts = {}
    return {"at": round(time.time(), 1), "done": counts.get("done", done_count(job)), "jobs_status_s": s_time,
            "jobs_status_cpu_s": s_cpu, "jobs_report_s": r_time, "jobs_report_cpu_s": r_cpu, "report_html_mib": round(os.path.getsize(Path(work) / "report.html") / 2**20, 2),
            "status_json_s": p_time, "status_json_ok": page.ok}


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a live process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMarks:
    """The collect processes' CPU seconds when the journal first showed 1, chunk, 2 x chunk... studies done."""

    def __init__(self, chunk: int) -> None:
        self.chunk, self.offset, self.marks = chunk, 0.0, {}  # type: ignore[var-annotated]

    def sample(self, pid: int, done: int) -> None:
        cpu = self.offset + proc_cpu(pid)
        for b in [1, *range(self.chunk, done + 1, self.chunk)]:
            if b <= done and b not in self.marks:
                self.marks[b] = cpu

    def process_ended(self, pid_cpu: float) -> None:
        self.offset += pid_cpu

    def per_chunk(self) -> list[dict[str, Any]]:
        keys = sorted(self.marks)
        return [{"upto": b, "cpu_ms_per_study": round((self.marks[b] - self.marks[a]) * 1000 / (b - a), 2)}
                for a, b in zip(keys, keys[1:])]


def chunk_rates(times: list[float], chunk: int, restart_at: float | None) -> list[dict[str, Any]]:
    rows = []
    for k in range(chunk, len(times) + 1, chunk):
        first, last = times[k - chunk], times[k - 1]
        rows.append({"upto": k, "seconds": round(last - first, 1), "studies_per_s": round(chunk / max(last - first,
                                                                                                          1e-6), 2),
                     "spans_restart": bool(restart_at and first < restart_at <= last)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--studies", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--kill-at", type=float, default=0.5)
    ap.add_argument("--pool", type=int, default=2)
    ap.add_argument("--anonymize", action="store_true", help="pseudonymize into an anonymizing DcmDir")
    ap.add_argument("--budget", type=float, default=None, help="minutes: stop the job there and report")
    ap.add_argument("--probe-every", type=float, default=60.0)
    ap.add_argument("--base", required=True)
    ap.add_argument("--out", default="benchmarks/results/scale_collect.json")
    args = ap.parse_args()
    deadline = time.monotonic() + args.budget * 60 if args.budget else None
    work = Path(args.base)
    work.mkdir(parents=True, exist_ok=True)
    marker = work / f"written-{args.studies}"
    if not marker.exists():
        write_tree(str(work / "pacs"), args.studies, per_study=1)
        (work / "worklist.txt").write_text("".join(accession(i) + "\n" for i in range(args.studies)))
        marker.write_text("ok")
    (work / "dest").mkdir(exist_ok=True)
    (work / "services.yml").write_text(f"pacs: {{ctype: DcmDir, path: {work / 'pacs'}}}\n"
                                       f"dest: {{ctype: DcmDir, path: {work / 'dest'}, "
                                       f"anonymizing: {str(args.anonymize).lower()}}}\n")
    job = work / "job"
    os.environ.setdefault("DIANA_PSEUDONYM_KEY", "scale-benchmark-key-not-secret")
    collect = ["nice", "-n", "10", DIANA, "-s", "services.yml", "collect", "worklist.txt", "pacs", "dest",
               "--job-dir", str(job), "--pool", str(args.pool), "--retries", "0",
               "--anonymize" if args.anonymize else "--no-anonymize"]
    port = free_port()
    serve = subprocess.Popen([DIANA, "serve", str(job), "--port", str(port)], cwd=work, stderr=subprocess.DEVNULL)
    status_url = f"http://127.0.0.1:{port}/status.json"
    report: dict[str, Any] = {"studies": args.studies, "pool": args.pool, "anonymize": args.anonymize,
                              "load_before": os.getloadavg(), "probes": []}
    log = open(work / "collect.log", "ab")  # noqa: SIM115 - open for the runs below
    run: subprocess.Popen[bytes] | None = None
    try:
        t0 = time.time()
        run = subprocess.Popen(collect, cwd=work, stdout=log, stderr=log)
        report["first_start"] = t0
        killed_at = None
        next_probe = time.monotonic() + args.probe_every
        marks = CpuMarks(args.chunk)
        last_cpu = 0.0
        while run.poll() is None:
            time.sleep(2)
            n = done_count(job)
            last_cpu = proc_cpu(run.pid) or last_cpu
            marks.sample(run.pid, n)
            if killed_at is None and n >= args.kill_at * args.studies:
                run.send_signal(signal.SIGKILL)
                run.wait()
                killed_at = time.time()
                report["killed"] = {"done": done_count(job), "at": killed_at}
                report["after_kill"] = probe(str(work), job, status_url)
                print("killed", report["killed"], report["after_kill"], flush=True)
                break
            if time.monotonic() >= next_probe:
                report["probes"].append(probe(str(work), job, status_url))
                print(report["probes"][-1], flush=True)
                next_probe = time.monotonic() + args.probe_every
            if deadline and time.monotonic() > deadline:
                break
        if run.poll() is None:  # budget spent before the kill point: kill here
            run.send_signal(signal.SIGKILL)
            run.wait()
            killed_at = time.time()
            report["killed"] = {"done": done_count(job), "at": killed_at, "by_budget": True}
            report["after_kill"] = probe(str(work), job, status_url)
        marks.process_ended(last_cpu)
        report["first_process_cpu_s"] = round(last_cpu, 1)
        before = done_count(job)
        restart = time.time()
        report["restart"] = restart
        run = subprocess.Popen(collect, cwd=work, stdout=log, stderr=log)
        first_new = None
        next_probe = time.monotonic() + args.probe_every
        last_cpu = 0.0
        while run.poll() is None:
            time.sleep(1)
            n = done_count(job)
            last_cpu = proc_cpu(run.pid) or last_cpu
            marks.sample(run.pid, n)
            if first_new is None and n > before:
                first_new = time.time()
                report["rerun_cpu_s_to_first_new_study"] = round(last_cpu, 2)
            if time.monotonic() >= next_probe:
                report["probes"].append(probe(str(work), job, status_url))
                print(report["probes"][-1], flush=True)
                next_probe = time.monotonic() + args.probe_every
            if deadline and time.monotonic() > deadline:
                run.send_signal(signal.SIGINT)  # stopped by the budget: report how far it got
                run.wait(timeout=120)
                report["stopped_by_budget"] = True
        report["rerun_exit"] = run.returncode
        report["resume_seconds_to_first_new_study"] = round(first_new - restart, 2) if first_new else None
        report["final"] = probe(str(work), job, status_url)
        times = done_times(job)
        with sqlite3.connect(f"file:{job / 'journal.sqlite'}?mode=ro", uri=True) as db:
            report["attempts"] = dict(db.execute("SELECT attempts, count(*) FROM items GROUP BY attempts").fetchall())
            report["journal_counts"] = dict(db.execute("SELECT status, count(*) FROM items GROUP BY status")
                                            .fetchall())
        report["dest_files"] = sum(len(files) for _, _, files in os.walk(work / "dest"))
        report["rerun_process_cpu_s"] = round(last_cpu, 1)
        report["chunks"] = chunk_rates(times, args.chunk, restart)
        cpu_rows = {r["upto"]: r["cpu_ms_per_study"] for r in marks.per_chunk()}
        for row in report["chunks"]:
            row["cpu_ms_per_study"] = cpu_rows.get(row["upto"])
        clean = [c for c in report["chunks"] if not c["spans_restart"]]
        if len(clean) >= 2:
            report["last_over_first"] = round(clean[-1]["studies_per_s"] / clean[0]["studies_per_s"], 3)
        report["journal_mib"] = round(sum(f.stat().st_size for f in job.glob("journal.sqlite*")) / 2**20, 1)
        report["load_after"] = os.getloadavg()
    finally:
        if run is not None and run.poll() is None:
            run.send_signal(signal.SIGKILL)
            run.wait()
        serve.terminate()
        serve.wait()
        log.close()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("probes",)}, indent=1))


if __name__ == "__main__":
    main()
