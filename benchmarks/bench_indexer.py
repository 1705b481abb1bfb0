"""Benchmark: FileIndexer files/s vs a bare os.scandir + pydicom.dcmread(stop_before_pixels=True) loop.

Writes N small CT instances (default 2,000; 40 studies, nested folders) into a temporary folder, then in the same
run times: the bare loop (walk + header read, nothing registered), and ``FileIndexer.index_path`` with the DcmDir
plugin's header reader into the embedded SqliteRegistry and into Redis (own redis-server via diana_redis.testing),
serial and with a pool of 2 threads. Each timing is the best of ``--repeat`` runs on a warm page cache.
Usage: python benchmarks/bench_indexer.py [N] [REPEAT]
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import pydicom

from diana_core import FileIndexer
from diana_core.embedded import SqliteRegistry
from diana_core.errors import ConfigError
from diana_core.usecases.indexer import default_reader
from diana_orthanc.testdata import write_small_ct


def generate(base: Path, n: int, per_study: int = 50) -> None:
    """N instances with a realistic header and a 16x16 pixel block, in base/xx/ACC/IMnnnn.dcm."""
    for i in range(n):
        study = i // per_study
        accession = f"ACC{study:05d}"
        write_small_ct(base / f"{study % 8:02d}" / accession / f"IM{i:05d}.dcm", accession, i % per_study + 1,
                       patient_id=f"P{study:05d}", patient_name="Bench^Patient", size=16,
                       study_uid=f"1.2.826.0.1.3680043.8.498.1.{study}", PatientBirthDate="19700101",
                       StudyDate="20240101", StudyTime="120000", StudyDescription="CT CHEST W CONTRAST",
                       SeriesDescription="Axial 1.25")


def bare_loop(base: str) -> int:
    """The baseline: recursive scandir and a header-only pydicom read of every *.dcm, nothing else."""
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


def pydicom_reader(path: str) -> pydicom.Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(n: int = 2000, repeat: int = 3) -> None:
    with tempfile.TemporaryDirectory(prefix="diana-bench-") as tmp:
        base = Path(tmp) / "data"
        t0 = time.perf_counter()
        generate(base, n)
        print(f"generated {n} files in {time.perf_counter() - t0:.1f} s")
        bare_loop(str(base))  # warm the page cache for everyone

        t_bare, count = best(lambda: bare_loop(str(base)), repeat)
        assert count == n, count
        print(f"baseline  scandir + dcmread(stop_before_pixels)   {n / t_bare:8,.0f} files/s")

        try:
            default_reader(str(base))
            reader, reader_name = None, "DcmDir plugin reader"
        except ConfigError:
            reader, reader_name = pydicom_reader, "pydicom fallback reader (DcmDir plugin not installed)"
        print(f"indexer header reader: {reader_name}")

        registries = [("SqliteRegistry", lambda: SqliteRegistry(path=os.path.join(tmp, f"r{time.time_ns()}.sqlite")))]
        server = None
        try:
            from diana_redis import Redis
            from diana_redis.testing import RedisServer

            server = RedisServer().start()

            def redis_registry():
                reg = Redis(host=server.host, port=server.port)
                reg._client().flushall()
                return reg

            registries.append(("Redis", redis_registry))
        except Exception as exc:  # noqa: BLE001 - a missing/broken Redis plugin only drops that row
            print(f"(Redis skipped: {type(exc).__name__}: {exc})")
        try:
            for label, make in registries:
                for pool in (0, 2):
                    def run(make=make, pool=pool):
                        result = FileIndexer(pool_size=pool).index_path(base, make(), reader=reader)
                        assert result.registered == n and result.bad_count == 0, result
                        return result
                    t_idx, _ = best(run, repeat)
                    print(f"indexer   {label:<14} pool={pool}                 {n / t_idx:8,.0f} files/s"
                          f"   ratio vs baseline {t_bare / t_idx:4.2f}")
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
