"""Benchmark: indexing a folder of realistic CT files vs a bare scandir + pydicom header-read loop.

Writes N realistic CT instances (default 10,000; 512x512 16-bit with the full 258-element CT_small header, ~0.5 MB
each, 100 per series, 2 series per study: benchmarks/realistic.py) and then, round after round on a warm page cache,
times the baseline and each of Diana's readers on the same tree:
  baseline        recursive os.scandir + ``pydicom.dcmread(stop_before_pixels=True)`` of every file, nothing kept
  FileIndexer     ``FileIndexer.index_path`` with the DcmDir header reader into SqliteRegistry / Redis (serial)
  DcmDir.index    ``DcmDir.index(keys=ids)`` (walk + validated header read + the 5 identifiers a registry needs) and
                  ``DcmDir.index()`` (every element converted into a simplified Dixel)
The ratio (baseline time / ours) is taken per round; min/median/max are printed. Diana's header reader parses each
file's first 64 KiB from memory (one read instead of pydicom's ~300 small buffered reads); for context, a second
baseline does the same in a bare loop (``--strong``), so the share of the ratio that comes from that trick is visible.

    .venv/bin/python benchmarks/bench_indexer.py [--n 10000] [--rounds 3] [--strong]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pydicom

sys.path.insert(0, str(Path(__file__).parent))
from realistic import ratio_line, write_realistic_cts  # noqa: E402

from diana_core import FileIndexer  # noqa: E402
from diana_core.embedded import SqliteRegistry  # noqa: E402
from diana_dcmdir import DcmDir  # noqa: E402
from diana_redis import Redis  # noqa: E402
from diana_redis.testing import RedisServer  # noqa: E402

IDS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "AccessionNumber")


def bare_loop(base: str) -> int:
    count, stack = 0, [base]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir():
                    stack.append(entry.path)
                elif entry.name.endswith(".dcm"):
                    pydicom.dcmread(entry.path, stop_before_pixels=True)
                    count += 1
    return count


def chunk_loop(base: str, chunk: int = 64 * 1024) -> int:
    """The bare loop with Diana's I/O trick: the first 64 KiB read at once and parsed from memory."""
    count, stack = 0, [base]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir():
                    stack.append(entry.path)
                elif entry.name.endswith(".dcm"):
                    with open(entry.path, "rb") as fh:
                        head = fh.read(chunk)
                    pydicom.dcmread(io.BytesIO(head), stop_before_pixels=True)
                    count += 1
    return count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--strong", action="store_true", help="also time each runner against the chunked bare loop")
    args = ap.parse_args()
    n = args.n
    with tempfile.TemporaryDirectory(prefix="diana-bench-") as tmp, RedisServer() as server:
        base = Path(tmp) / "data"
        t0 = time.perf_counter()
        write_realistic_cts(base, n)
        print(f"{n:,} realistic CT files ({(base / '0000' / '00' / 'IM00000.dcm').stat().st_size / 1024:.0f} KiB "
              f"each) written in {time.perf_counter() - t0:.0f} s")
        bare_loop(str(base))  # warm the page cache for everyone

        def sqlite() -> None:
            reg = SqliteRegistry(path=os.path.join(tmp, f"r{time.time_ns()}.sqlite"))
            result = FileIndexer().index_path(base, reg)
            assert result.registered == n and result.bad_count == 0, result

        def redis() -> None:
            reg = Redis(host=server.host, port=server.port)
            reg._client().flushall()
            result = FileIndexer().index_path(base, reg)
            assert result.registered == n and result.bad_count == 0, result

        folder = DcmDir(path=str(base))

        def index_keys() -> None:
            assert sum(1 for _ in folder.index(keys=IDS)) == n

        def index_all() -> None:
            assert sum(1 for _ in folder.index()) == n

        runners = {"FileIndexer -> SqliteRegistry": sqlite, "FileIndexer -> Redis": redis,
                   "DcmDir.index(keys=5 ids)": index_keys, "DcmDir.index() (every element)": index_all}
        ratios: dict[str, list[float]] = {name: [] for name in runners}
        strong: dict[str, list[float]] = {name: [] for name in runners}
        cpu: dict[str, list[float]] = {name: [] for name in ["bare loop", *runners]}  # process CPU ms per file
        best_bare = best_chunk = float("inf")
        order = list(runners.items())
        for i in range(args.rounds):
            for name, run in order[i % len(order):] + order[:i % len(order)]:  # rotated: no runner always first
                t0, c0 = time.perf_counter(), time.process_time()
                assert bare_loop(str(base)) == n
                t_bare = time.perf_counter() - t0
                cpu["bare loop"].append((time.process_time() - c0) * 1000 / n)
                best_bare = min(best_bare, t_bare)
                if args.strong:
                    t0 = time.perf_counter()
                    assert chunk_loop(str(base)) == n
                    t_chunk = time.perf_counter() - t0
                    best_chunk = min(best_chunk, t_chunk)
                t0, c0 = time.perf_counter(), time.process_time()
                run()
                t_ours = time.perf_counter() - t0
                cpu[name].append((time.process_time() - c0) * 1000 / n)
                ratios[name].append(t_bare / t_ours)
                if args.strong:
                    strong[name].append(t_chunk / t_ours)
        print(f"baseline scandir + dcmread(stop_before_pixels): {n / best_bare:,.0f} files/s (best round)")
        for name, values in ratios.items():
            print("  " + ratio_line(f"{name:32s} / baseline", values))
        print("CPU ms per file (this process; median): " + ", ".join(
            f"{name} {statistics.median(values):.2f}" for name, values in cpu.items()))
        print(f"load average {os.getloadavg()[0]:.1f}")
        if args.strong:
            print(f"strong baseline, first 64 KiB read at once + dcmread(BytesIO): {n / best_chunk:,.0f} files/s")
            for name, values in strong.items():
                print("  " + ratio_line(f"{name:32s} / strong baseline", values))

if __name__ == "__main__":
    main()
