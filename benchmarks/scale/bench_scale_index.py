"""Scale run 1: index N small generated instance headers (default 1,000,000) into the SQLite and the Redis registry.

Writes the tree once (``headers.write_tree``: one template's bytes with patched identifiers, ~0.8 KB a file, 4 KiB
on disk), then runs ``FileIndexer.index_path`` (what ``diana index`` runs, serial reads) into ``SqliteRegistry`` and
into the Redis registry (a redis-server this script starts), sampling at every ``--chunk`` files: seconds for the
chunk, files/s, the process RSS (and redis-server's RSS). Pass: last chunk's rate within 20 % of the first's, RSS
flat after the first chunk. Results go to a JSON file (``--out``).

    nice -n 10 .venv/bin/python benchmarks/scale/bench_scale_index.py --n 1000000 --base /tmp/scale-tree
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from headers import write_tree  # noqa: E402

from diana_core.embedded import SqliteRegistry  # noqa: E402
from diana_core.usecases.indexer import FileIndexer  # noqa: E402
from diana_redis import Redis  # noqa: E402
from diana_redis.testing import RedisServer  # noqa: E402


def rss_kib(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def run_index(label: str, base: str, reg: Any, chunk: int, other_pid: int | None = None) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    last = {"t": time.perf_counter(), "n": 0, "cpu": cpu_s()}

    def progress(done: int, _total: int | None) -> None:
        if done - last["n"] >= chunk:
            now, cpu = time.perf_counter(), cpu_s()
            row = {"upto": done, "seconds": round(now - last["t"], 2),
                   "files_per_s": round((done - last["n"]) / (now - last["t"]), 1),
                   "cpu_ms_per_file": round((cpu - last["cpu"]) * 1000 / (done - last["n"]), 3),
                   "rss_mib": round(rss_kib() / 1024, 1)}
            if other_pid:
                row["server_rss_mib"] = round(rss_kib(other_pid) / 1024, 1)
            rows.append(row)
            print(label, row, flush=True)
            last.update(t=now, n=done, cpu=cpu)

    result = FileIndexer().index_path(base, reg, progress=progress)
    first, final = rows[0]["files_per_s"], rows[-1]["files_per_s"]
    rss = [r["rss_mib"] for r in rows]
    out = {"registry": label, "checked": result.checked, "registered": result.registered, "bad": result.bad_count,
           "seconds": round(result.elapsed, 1), "files_per_s": round(result.rate, 1), "chunks": rows,
           "last_over_first": round(final / first, 3), "rss_first_last_mib": [rss[0], rss[-1]],
           "rss_growth_after_first": round(rss[-1] / rss[0] - 1, 3)}
    print(label, {k: v for k, v in out.items() if k != "chunks"}, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--chunk", type=int, default=100_000)
    ap.add_argument("--base", required=True, help="folder for the tree (kept: the upload run reuses it)")
    ap.add_argument("--out", default="benchmarks/results/scale_index.json")
    ap.add_argument("--only", choices=("sqlite", "redis"), default=None)
    args = ap.parse_args()
    tree = os.path.join(args.base, "tree")
    marker = os.path.join(args.base, f"written-{args.n}")
    report: dict[str, Any] = {"n": args.n, "chunk": args.chunk, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                        time.gmtime())}
    if not os.path.exists(marker):
        t0 = time.perf_counter()
        size = write_tree(tree, args.n, report=lambda k, s: print(f"written {k} in {s:.0f} s", flush=True))
        report["write"] = {"seconds": round(time.perf_counter() - t0, 1), "bytes_per_file": size}
        Path(marker).write_text(json.dumps(report["write"]))
    report["load_before"] = os.getloadavg()
    if args.only in (None, "sqlite"):
        db = os.path.join(args.base, "registry.sqlite")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        reg = SqliteRegistry(path=db)
        report["sqlite"] = run_index("sqlite", tree, reg, args.chunk)
        reg.close()
        report["sqlite"]["db_mib"] = round(os.path.getsize(db) / 2**20, 1)
    if args.only in (None, "redis"):
        with RedisServer() as server:
            reg = Redis(host=server.host, port=server.port)
            report["redis"] = run_index("redis", tree, reg, args.chunk, other_pid=server.pid)
    report["load_after"] = os.getloadavg()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
