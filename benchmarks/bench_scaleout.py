"""Benchmark: one vs two `diana worker` processes on the same collection job (studies/minute), same run.

The source is made latency-bound, as a busy hospital PACS is: the workers reach the PACS proxy (a real Orthanc doing
C-FIND/C-MOVE against a real remote Orthanc) through a small HTTP relay that holds every C-MOVE (`.../retrieve`) for
``--delay`` seconds. The engine's scaling, not the 2 cores of this machine, then decides the rate. Each repetition
runs the same 16-study job (0.5 MB 512x512 16-bit CT instances) with 1 worker, then with 2 (concurrency 2 each), and
prints studies/min for both, the in-process executor (pool 2) as the reference, and min/median/max of the ratio.

    .venv/bin/python benchmarks/bench_scaleout.py [--studies 16] [--per-study 2] [--delay 2.0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import redis
import requests

from diana_celery.testing import WorkerProcess
from diana_orthanc.testdata import ct_bytes
from diana_orthanc.testing import orthanc_workdir, start_orthanc, start_orthanc_pair
from diana_redis.testing import RedisServer


def latency_relay(target_port: int, delay: float) -> ThreadingHTTPServer:
    """An HTTP relay to 127.0.0.1:target_port that sleeps ``delay`` s before every C-MOVE (POST .../retrieve)."""

    class Relay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.command == "POST" and self.path.endswith("/retrieve"):
                time.sleep(delay)  # the latency-bound PACS
            conn = http.client.HTTPConnection("127.0.0.1", target_port, timeout=300)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            conn.close()

        do_GET = do_POST = do_PUT = do_DELETE = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def session(server) -> requests.Session:
    s = requests.Session()
    s.auth = (server.user, server.password)
    return s


def run_job(services: Path, worklist: Path, workdir: Path, env: dict[str, str], executor: str) -> float:
    job = workdir / f"job-{time.time_ns()}"
    cmd = [sys.executable, "-m", "diana_core.cli", "-s", str(services), "--json", "collect", str(worklist), "hospital",
           "research", "--job-dir", str(job), "--job-id", job.name, "--executor", executor, "--pool", "2"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env}, timeout=900)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"collect failed: {proc.stderr[-2000:]}")
    summary = json.loads(proc.stdout)
    assert summary["done"] == summary["studies"], summary
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=16)
    ap.add_argument("--per-study", type=int, default=2)
    ap.add_argument("--delay", type=float, default=2.0, help="seconds each C-MOVE is held (the slow PACS)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    with orthanc_workdir("diana-bench-scaleout-") as workdir, RedisServer() as broker:
        pair = start_orthanc_pair(workdir)
        research = start_orthanc(workdir, "research", "RESEARCH")
        workers: list[WorkerProcess] = []
        relay = latency_relay(pair.local.http_port, args.delay)
        try:
            remote = session(pair.remote)
            for p in range(args.studies):
                for i in range(args.per_study):
                    data = ct_bytes(i, patient=p + 1, run="bench-scaleout", size=512)
                    remote.post(f"{pair.remote.url}/instances", data=data).raise_for_status()
            worklist = workdir / "worklist.csv"
            worklist.write_text("AccessionNumber\n" + "".join(f"ACC{p + 1:04d}0000\n" for p in range(args.studies)))
            proxy = {**pair.local.service_desc(), "port": relay.server_address[1]}
            services = workdir / "services.json"
            services.write_text(json.dumps({
                "hospital": {"ctype": "ProxiedDicom", "proxy_desc": proxy, "proxy_domain": "remote"},
                "research": research.service_desc(),
                "executor": {"ctype": "CeleryExecutor", "broker": f"redis://127.0.0.1:{broker.port}/0",
                            "visibility_timeout": 600},
            }))
            env = {"DIANA_PSEUDONYM_KEY": "bench-scaleout"}
            client = redis.Redis(port=broker.port)

            def reset() -> None:
                research.reset()
                pair.local.reset()

            def start(name: str) -> None:
                w = WorkerProcess(name=f"{name}@bench", services=services, log=Path(workdir) / f"{name}.log",
                                  concurrency=2, env=env).start()
                workers.append(w.wait_ready(client))

            rates: dict[str, list[float]] = {"local": [], "one": [], "two": []}
            for _ in range(args.repeat):
                reset()
                rates["local"].append(args.studies / run_job(services, worklist, Path(workdir), env, "local") * 60)
                reset()
                start(f"w{len(workers)}")
                rates["one"].append(args.studies / run_job(services, worklist, Path(workdir), env, "executor") * 60)
                reset()
                start(f"w{len(workers)}")
                rates["two"].append(args.studies / run_job(services, worklist, Path(workdir), env, "executor") * 60)
                for w in workers:
                    w.proc.terminate() if w.proc and w.proc.poll() is None else None
                for w in workers:
                    w.stop()
                workers.clear()
            ratios = [t / o for t, o in zip(rates["two"], rates["one"])]
            print(f"{args.studies} studies x {args.per_study} instances (0.5 MB), C-MOVE held {args.delay} s, "
                  f"concurrency 2 per worker, {args.repeat} repetitions")
            for label, key in (("in-process pool 2", "local"), ("1 worker", "one"), ("2 workers", "two")):
                r = rates[key]
                print(f"  {label:18s} studies/min  min {min(r):6.1f}  median {statistics.median(r):6.1f}  "
                      f"max {max(r):6.1f}")
            print(f"  ratio 2 workers / 1 worker  min {min(ratios):.2f}  median {statistics.median(ratios):.2f}  "
                  f"max {max(ratios):.2f}")
        finally:
            for w in workers:
                w.stop()
            relay.shutdown()
            research.stop()
            pair.stop()


if __name__ == "__main__":
    tempfile.tempdir = None
    main()
