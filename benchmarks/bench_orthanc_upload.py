"""Benchmark: bulk upload to a real Orthanc — ``Orthanc.put_many`` and ``diana upload`` vs raw concurrent POSTs.

Starts its own Orthanc (diana_orthanc.testing), writes N realistic CT instances (512x512 16-bit, full CT_small
header, ~0.5 MB each: benchmarks/realistic.py), then for each worker count (1, 4, 8) runs, in alternating order
within every round, on the same files and the same emptied server:
  baseline  raw ``requests`` POST /instances from a ThreadPoolExecutor of that size, one Session whose pool matches
            (the strongest plain client: no retries, no checks, file read in the worker)
  put_many  ``Orthanc.put_many(paths, workers=N)`` (bounded queue, retries, typed errors, per-item failure list)
  upload    ``FileIndexer.upload_files`` — what ``diana upload`` runs (a folder of files into Orthanc)
With ``--cli`` two more, each a fresh process (interpreter start and imports included), CPU from getrusage:
  raw-script  a 20-line script: ``requests`` POST of every file from a thread pool of that size
  cli         ``diana -s services.yml upload DIR REGISTRY orthanc --all --restart --workers N`` (REGISTRY made
              once by ``diana index``), the command a user runs; ``--restart`` because every round must send all
              (the resume marks are still written, as on every ``--all`` run)
Each round gives a ratio ours/baseline; min/median/max over the rounds are printed, and client CPU per instance.
``--cli`` byte-compiles site-packages and the sources first (as an install does: with ``PYTHONDONTWRITEBYTECODE`` and
no ``__pycache__`` both processes would compile every module they import on every run).

    .venv/bin/python benchmarks/bench_orthanc_upload.py [--n 300] [--workers 1,4,8] [--rounds 3] [--cli]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
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


RAW_SCRIPT = """
import sys
from concurrent.futures import ThreadPoolExecutor
import requests
from requests.adapters import HTTPAdapter
url, user, password, workers, listing = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
sess = requests.Session()
sess.auth = (user, password)
sess.mount("http://", HTTPAdapter(pool_maxsize=workers))
def post(path):
    with open(path, "rb") as fh:
        sess.post(url + "/instances", data=fh.read(), timeout=60).raise_for_status()
with ThreadPoolExecutor(max_workers=workers) as pool:
    list(pool.map(post, open(listing).read().split()))
"""


INNER: list[float] = []  # the seconds `diana upload` reports for its upload (start-up excluded), per run


def child(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one child process (user + system, from getrusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "COLUMNS": "120"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:4]} failed: {proc.stderr[-800:]}")
    if '"seconds"' in proc.stdout:
        import json

        INNER.append(json.loads(proc.stdout)["seconds"])
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def raw_script(server, paths: list[Path], workers: int) -> tuple[float, float]:
    listing = Path(os.path.commonpath(paths)).parent / "listing.txt"
    listing.write_text("\n".join(map(str, paths)))
    return child([sys.executable, "-c", RAW_SCRIPT, server.url, server.user, server.password, str(workers),
                  str(listing)])


def cli(server, paths: list[Path], workers: int) -> tuple[float, float]:
    folder = Path(os.path.commonpath(paths))  # the files/ root: study/series/IMxxxxx.dcm below it
    work = folder.parent
    services = work / "services.yml"
    services.write_text(f"orthanc: {{ctype: Orthanc, host: {server.host}, port: {server.http_port}, "
                        f"user: {server.user}, password: {server.password}}}\n")
    registry = work / "registry.sqlite"
    if not registry.exists():
        child([sys.executable, "-m", "diana_core.cli", "index", str(folder), str(registry)])
    return child([sys.executable, "-m", "diana_core.cli", "-s", str(services), "upload", str(folder), str(registry),
                  "orthanc", "--all", "--restart", "--workers", str(workers), "--json"])


def stored(server) -> int:
    return int(requests.get(f"{server.url}/statistics", auth=(server.user, server.password),
                            timeout=30).json()["CountInstances"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="instances per upload (default 300, ~160 MB)")
    ap.add_argument("--workers", default="1,4,8", help="worker counts (default 1,4,8)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per worker count (default 3)")
    ap.add_argument("--cli", action="store_true", help="only the two processes: raw-script vs diana upload")
    args = ap.parse_args()
    if args.cli:
        return main_cli(args)
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


def main_cli(args: argparse.Namespace) -> None:
    import compileall
    import sysconfig

    root = Path(__file__).resolve().parent.parent
    for folder in (sysconfig.get_paths()["purelib"], root / "diana_core", root / "plugins"):
        compileall.compile_dir(str(folder), quiet=2, workers=2)
    runners = {"raw-script": raw_script, "cli": cli}
    with orthanc_workdir("diana-bench-") as work:
        paths = write_realistic_cts(work / "files", args.n)
        print(f"{len(paths)} realistic CT instances; load average {os.getloadavg()[0]:.1f}")
        server = start_orthanc(work, "bench", "BENCH")
        try:
            for workers in (int(w) for w in args.workers.split(",")):
                wall: dict[str, list[float]] = {name: [] for name in runners}
                cpu: dict[str, list[float]] = {name: [] for name in runners}
                for rnd in range(args.rounds):
                    order = list(runners) if rnd % 2 == 0 else list(reversed(runners))
                    for name in order:
                        server.reset()
                        w, c = runners[name](server, paths, workers)
                        wall[name].append(w)
                        cpu[name].append(c)
                        assert stored(server) == len(paths), f"{name}: Orthanc holds {stored(server)}"
                raw, ours = wall["raw-script"], wall["cli"]
                inner = INNER[-args.rounds:]
                ms = {k: [1000 * c / len(paths) for c in v] for k, v in cpu.items()}
                print(f"workers={workers}: raw-script {len(paths) / statistics.median(raw):.0f} inst/s, cli "
                      f"{len(paths) / statistics.median(ours):.0f} inst/s (medians)")
                print("  " + ratio_line("cli / raw-script (rate)", [b / t for b, t in zip(raw, ours, strict=True)]))
                print(f"  client CPU ms/instance (process start included): raw-script "
                      f"{min(ms['raw-script']):.2f} / {statistics.median(ms['raw-script']):.2f} / "
                      f"{max(ms['raw-script']):.2f}, cli {min(ms['cli']):.2f} / {statistics.median(ms['cli']):.2f} / "
                      f"{max(ms['cli']):.2f} (min / median / max); ratio of medians "
                      f"{statistics.median(ms['cli']) / statistics.median(ms['raw-script']):.2f}")
                print(f"  cli: its upload took median {statistics.median(inner):.2f} s of {statistics.median(ours):.2f} s "
                      f"(the rest: start-up, imports, opening the registry)")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
