"""Scale run 1b: ``diana upload --all`` killed with SIGKILL half way, then run again: how much it reads and posts again.

Writes N small generated instances (default 100,000; 10 per study), registers them with ``diana index`` into an
embedded SQLite registry, starts an Orthanc (``--pg``: with its PostgreSQL index), runs ``diana upload PATH
REGISTRY archive --all`` and kills it (SIGKILL) once Orthanc holds ``--kill-at`` of them, then runs the same command
again. Counts: what Orthanc held at the kill, what the rerun read and posted (``done`` + ``skipped`` - ``resumed``),
what it posted again that Orthanc already had (``skipped`` - ``resumed``: AlreadyStored answers), and that Orthanc
ends with exactly N. ``--baseline`` adds a run with ``--restart`` (every file read and posted again), for scale.

    nice -n 10 .venv/bin/python benchmarks/scale/bench_scale_upload.py --n 100000 --base /tmp/scale-upload
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).parent))
from headers import write_tree  # noqa: E402
from servers import Postgres, start_archive  # noqa: E402

DIANA = str(Path(sys.executable).parent / "diana")


def count(session: requests.Session, url: str) -> int:
    return int(session.get(f"{url}/statistics", timeout=60).json()["CountInstances"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--kill-at", type=float, default=0.5)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--pg", action="store_true")
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--base", required=True)
    ap.add_argument("--out", default="benchmarks/results/scale_upload.json")
    args = ap.parse_args()
    base = Path(args.base)
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    tree, registry = base / "tree", base / "registry.sqlite"
    report: dict[str, Any] = {"n": args.n, "workers": args.workers, "index": "postgresql" if args.pg else "sqlite",
                              "load_before": os.getloadavg()}
    if not (base / f"written-{args.n}").exists():
        write_tree(str(tree), args.n, per_study=10)
        (base / f"written-{args.n}").write_text("ok")
    t0 = time.perf_counter()
    out = subprocess.run([DIANA, "index", str(tree), str(registry), "--json"], capture_output=True, text=True,
                         check=True)
    report["index"] = {"seconds": round(time.perf_counter() - t0, 1),
                       **{k: v for k, v in json.loads(out.stdout).items() if k in ("checked", "registered", "bad")}}
    pg = Postgres(base).start() if args.pg else None
    server = start_archive(base, "archive", pg)
    try:
        (base / "services.json").write_text(json.dumps({"archive": server.service_desc()}))
        upload = [DIANA, "-s", str(base / "services.json"), "upload", str(tree), str(registry), "archive", "--all",
                  "--json", "--workers", str(args.workers)]
        session = requests.Session()
        session.auth = (server.user, server.password)
        t0 = time.perf_counter()
        first = subprocess.Popen(upload, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while first.poll() is None and count(session, server.url) < args.kill_at * args.n:
            time.sleep(0.5)
        first.send_signal(signal.SIGKILL)
        first.wait()
        killed_after = time.perf_counter() - t0
        time.sleep(1)  # requests Orthanc was already answering land
        held = count(session, server.url)
        report["killed"] = {"seconds": round(killed_after, 1), "orthanc_held": held}
        print("killed", report["killed"], flush=True)
        t0 = time.perf_counter()
        out = subprocess.run(upload, capture_output=True, text=True, check=False)
        rerun = json.loads(out.stdout)
        elapsed = time.perf_counter() - t0
        read = rerun["done"] + rerun["skipped"] - rerun["resumed"]
        report["rerun"] = {"seconds": round(elapsed, 1), "exit": out.returncode, "done": rerun["done"],
                           "skipped": rerun["skipped"], "resumed_unread": rerun["resumed"], "failed": rerun["failed"],
                           "files_read_and_posted": read, "re_posted_already_stored": rerun["skipped"] - rerun["resumed"],
                           "re_read_share_of_held": round((rerun["skipped"] - rerun["resumed"]) / max(held, 1), 4)}
        report["orthanc_final"] = count(session, server.url)
        print("rerun", report["rerun"], "final", report["orthanc_final"], flush=True)
        if args.baseline:
            t0 = time.perf_counter()
            out = subprocess.run([*upload, "--restart"], capture_output=True, text=True, check=False)
            again = json.loads(out.stdout)
            report["restart_baseline"] = {"seconds": round(time.perf_counter() - t0, 1), "done": again["done"],
                                          "skipped": again["skipped"], "resumed_unread": again["resumed"]}
            print("baseline", report["restart_baseline"], flush=True)
    finally:
        server.stop()
        if pg is not None:
            pg.stop()
    report["load_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
