"""Scale run 3: the research archive at scale. ``Orthanc.put_many`` (4 workers) of N generated small instances
(default 100,000; ~0.8 KB each, 10 per study) into an Orthanc whose index is PostgreSQL (Debian's
orthanc-postgresql plugin, a cluster this script starts), then the same into an Orthanc with its default SQLite
index (``--sqlite-n``, default N). Samples every ``--chunk`` instances: seconds, instances/s, Orthanc's RSS and CPU,
the index size. Pass: last chunk's rate within 20 % of the first's.

    nice -n 10 .venv/bin/python benchmarks/scale/bench_scale_orthanc.py --n 100000 --base /tmp/scale-orthanc
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from headers import make_writer  # noqa: E402
from servers import Postgres, start_archive  # noqa: E402

from diana_core.services import load_services  # noqa: E402


def proc_stat(pid: int) -> tuple[float, float]:
    """(RSS MiB, CPU seconds) of a process."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return round(rss, 1), cpu


def folder_mib(path: Path) -> float:
    return round(sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20, 1)


def instances(n: int, per_study: int) -> Iterator[bytes]:
    instance = make_writer()
    for i in range(n):
        yield instance(i, per_study)


def run(label: str, base: Path, n: int, chunk: int, workers: int, pg: Postgres | None) -> dict[str, Any]:
    server = start_archive(base, label, pg)
    try:
        orthanc = load_services({label: server.service_desc()})[label]
        pid = server.proc.pid
        rows: list[dict[str, Any]] = []
        pg_cpu = pg.cpu_seconds if pg is not None else (lambda: 0.0)
        last = {"t": time.perf_counter(), "n": 0, "cpu": proc_stat(pid)[1], "me": time.process_time(), "pg": pg_cpu()}

        def progress(done: int, _total: int | None) -> None:
            if done - last["n"] < chunk:
                return
            now, (rss, cpu), me, db = time.perf_counter(), proc_stat(pid), time.process_time(), pg_cpu()
            k = done - last["n"]
            row = {"upto": done, "seconds": round(now - last["t"], 1), "inst_per_s": round(k / (now - last["t"]), 1),
                   "orthanc_cpu_ms_per_inst": round((cpu - last["cpu"]) * 1000 / k, 3),
                   "client_cpu_ms_per_inst": round((me - last["me"]) * 1000 / k, 3),
                   "postgres_cpu_ms_per_inst": round((db - last["pg"]) * 1000 / k, 3), "orthanc_rss_mib": rss,
                   "load": round(os.getloadavg()[0], 1)}
            rows.append(row)
            print(label, row, flush=True)
            last.update(t=now, n=done, cpu=cpu, me=me, pg=db)

        t0 = time.perf_counter()
        result = orthanc.put_many(instances(n, 10), workers=workers, progress=progress)
        elapsed = time.perf_counter() - t0
        stats = orthanc.statistics()
        out: dict[str, Any] = {
            "index": label, "n": n, "done": result.done, "skipped": result.skipped, "failed": len(result.failed),
            "seconds": round(elapsed, 1), "inst_per_s": round(n / elapsed, 1),
            "count_instances": stats.get("CountInstances"), "count_studies": stats.get("CountStudies"),
            "chunks": rows, "last_over_first": round(rows[-1]["inst_per_s"] / rows[0]["inst_per_s"], 3),
            "cpu_last_over_first": round(rows[-1]["orthanc_cpu_ms_per_inst"] / rows[0]["orthanc_cpu_ms_per_inst"], 3),
            "storage_mib": folder_mib(server.storage)}
        if pg is not None:
            out["postgres_mib"] = round(pg.database_bytes() / 2**20, 1)
        print(label, {k: v for k, v in out.items() if k != "chunks"}, flush=True)
        return out
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--sqlite-n", type=int, default=None)
    ap.add_argument("--chunk", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--base", required=True)
    ap.add_argument("--only", choices=("postgresql", "sqlite"), default=None)
    ap.add_argument("--out", default="benchmarks/results/scale_orthanc.json")
    args = ap.parse_args()
    base = Path(args.base)
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)  # the postgres user reaches its cluster folder inside
    report: dict[str, Any] = {"workers": args.workers, "load_before": os.getloadavg()}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after each part: a run stopped later keeps what it measured
        report["load_after"] = os.getloadavg()
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")

    if args.only in (None, "postgresql"):
        pg = Postgres(base).start()
        try:
            report["postgresql"] = run("postgresql", base, args.n, args.chunk, args.workers, pg)
        finally:
            pg.stop()
        save()
    if args.only in (None, "sqlite"):
        report["sqlite"] = run("sqlite", base, args.sqlite_n or args.n, args.chunk, args.workers, None)
        save()


if __name__ == "__main__":
    main()
