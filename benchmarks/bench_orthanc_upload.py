"""Benchmark: bulk upload to a real Orthanc with ``Orthanc.put_many`` vs a plain concurrent baseline.

Starts its own Orthanc (diana_orthanc.testing), writes N small synthetic CT instances, then in the same run uploads
them (a) with raw ``requests`` POST /instances from a ThreadPoolExecutor of the same size and (b) with
``Orthanc.put_many`` (paths in, bounded concurrency, retries, typed errors). Orthanc is emptied between runs.
Prints both rates and ours as a ratio of the baseline.

    .venv/bin/python benchmarks/bench_orthanc_upload.py [--n 1000] [--workers 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from diana_orthanc import Orthanc
from diana_orthanc.testdata import write_ct_instances
from diana_orthanc.testing import orthanc_workdir, start_orthanc


def baseline(server, paths: list[Path], workers: int) -> float:
    """Raw POSTs, one shared Session with a pool as big as the thread pool; returns seconds."""
    sess = requests.Session()
    sess.auth = (server.user, server.password)
    sess.mount("http://", HTTPAdapter(pool_maxsize=workers))
    url = f"{server.url}/instances"

    def post(path: Path) -> None:
        sess.post(url, data=path.read_bytes(), timeout=30).raise_for_status()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(post, paths))
    elapsed = time.perf_counter() - t0
    sess.close()
    return elapsed


def ours(server, paths: list[Path], workers: int) -> float:
    """``Orthanc.put_many`` on the same paths; returns seconds (asserts every file was stored)."""
    endpoint = Orthanc(host=server.host, port=server.http_port, user=server.user, password=server.password)
    t0 = time.perf_counter()
    result = endpoint.put_many(paths, workers=workers)
    elapsed = time.perf_counter() - t0
    assert result.done == len(paths) and not result.failed, result
    return elapsed


def count(server) -> int:
    sess = requests.Session()
    sess.auth = (server.user, server.password)
    return int(sess.get(f"{server.url}/statistics", timeout=30).json()["CountInstances"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="instances per upload (default 1000)")
    ap.add_argument("--workers", type=int, default=4, help="concurrency of both uploaders (default 4)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of each (default 2)")
    args = ap.parse_args()

    with orthanc_workdir("diana-bench-") as work:
        t0 = time.perf_counter()
        paths = write_ct_instances(work / "files", args.n, per_series=100, run="bench")
        size = sum(p.stat().st_size for p in paths) / len(paths)
        print(f"generated {len(paths)} CT instances ({size / 1024:.1f} KiB each) in {time.perf_counter() - t0:.1f} s")
        server = start_orthanc(work, "bench", "BENCH")
        try:
            times: dict[str, list[float]] = {"baseline": [], "put_many": []}
            for _ in range(args.rounds):
                for name, func in (("baseline", baseline), ("put_many", ours)):
                    server.reset()
                    times[name].append(func(server, paths, args.workers))
                    assert count(server) == len(paths), f"{name}: Orthanc holds {count(server)} instances"
        finally:
            server.stop()

    rates = {k: len(paths) / statistics.median(v) for k, v in times.items()}
    print(f"workers={args.workers} n={len(paths)} rounds={args.rounds} (median of rounds)")
    print(f"baseline (raw requests POST /instances): {rates['baseline']:8.1f} inst/s")
    print(f"Orthanc.put_many                      : {rates['put_many']:8.1f} inst/s")
    print(f"ratio put_many / baseline             : {rates['put_many'] / rates['baseline']:8.2f}")


if __name__ == "__main__":
    main()
