"""Benchmark: bulk upload to a real Orthanc — ``Orthanc.put_many`` and ``diana upload`` vs raw concurrent POSTs.

Starts its own Orthanc (diana_orthanc.testing), writes N realistic CT instances (512x512 16-bit, full CT_small
header, ~0.5 MB each: benchmarks/realistic.py), then for each worker count (1, 4, 8) runs, in alternating order
within every round, on the same files and the same emptied server:
  baseline  raw ``requests`` POST /instances from a ThreadPoolExecutor of that size, one Session whose pool matches
            (the strongest plain client: no retries, no checks, file read in the worker)
  put_many  ``Orthanc.put_many(paths, workers=N)`` (bounded queue, retries, typed errors, per-item failure list)
  upload    ``FileIndexer.upload_files`` — what ``diana upload`` runs (a folder of files into Orthanc)
Each round gives a ratio ours/baseline; min/median/max over the rounds are printed.

    .venv/bin/python benchmarks/bench_orthanc_upload.py [--n 300] [--workers 1,4,8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

sys.path.insert(0, str(Path(__file__).parent))
from realistic import ratio_line, write_realistic_cts  # noqa: E402

from diana_core import FileIndexer  # noqa: E402
from diana_orthanc import Orthanc  # noqa: E402
from diana_orthanc.testing import orthanc_workdir, start_orthanc  # noqa: E402


def baseline(server, paths: list[Path], workers: int) -> float:
    sess = requests.Session()
    sess.auth = (server.user, server.password)
    sess.mount("http://", HTTPAdapter(pool_maxsize=workers))
    url = f"{server.url}/instances"

    def post(path: Path) -> None:
        with open(path, "rb") as fh:
            sess.post(url, data=fh.read(), timeout=60).raise_for_status()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(post, paths))
    elapsed = time.perf_counter() - t0
    sess.close()
    return elapsed


def put_many(server, paths: list[Path], workers: int) -> float:
    endpoint = Orthanc(host=server.host, port=server.http_port, user=server.user, password=server.password)
    t0 = time.perf_counter()
    result = endpoint.put_many(paths, workers=workers)
    elapsed = time.perf_counter() - t0
    assert result.done == len(paths) and not result.failed, result
    return elapsed


def upload(server, paths: list[Path], workers: int) -> float:
    endpoint = Orthanc(host=server.host, port=server.http_port, user=server.user, password=server.password)
    t0 = time.perf_counter()
    result = FileIndexer().upload_files([str(p) for p in paths], "/", endpoint, workers=workers)
    elapsed = time.perf_counter() - t0
    assert result.done == len(paths) and not result.failed, result
    return elapsed


def stored(server) -> int:
    return int(requests.get(f"{server.url}/statistics", auth=(server.user, server.password),
                            timeout=30).json()["CountInstances"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="instances per upload (default 300, ~160 MB)")
    ap.add_argument("--workers", default="1,4,8", help="worker counts (default 1,4,8)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per worker count (default 3)")
    args = ap.parse_args()
    runners = {"baseline": baseline, "put_many": put_many, "upload": upload}

    with orthanc_workdir("diana-bench-") as work:
        t0 = time.perf_counter()
        paths = write_realistic_cts(work / "files", args.n)
        size = sum(p.stat().st_size for p in paths) / len(paths)
        print(f"{len(paths)} realistic CT instances ({size / 1024:.0f} KiB each), written in "
              f"{time.perf_counter() - t0:.0f} s")
        server = start_orthanc(work, "bench", "BENCH")
        try:
            for workers in (int(w) for w in args.workers.split(",")):
                times: dict[str, list[float]] = {name: [] for name in runners}
                for rnd in range(args.rounds):
                    order = list(runners) if rnd % 2 == 0 else list(reversed(runners))
                    for name in order:
                        server.reset()
                        times[name].append(runners[name](server, paths, workers))
                        assert stored(server) == len(paths), f"{name}: Orthanc holds {stored(server)}"
                base = times["baseline"]
                print(f"workers={workers}: baseline {len(paths) / min(base):.0f} inst/s (best round)")
                for name in ("put_many", "upload"):
                    ratios = [b / t for b, t in zip(base, times[name], strict=True)]
                    print("  " + ratio_line(f"{name:8s} / baseline", ratios))
        finally:
            server.stop()


if __name__ == "__main__":
    main()
