"""Control for scale run 1: is a slower last chunk the registry's size or the machine's load?

Indexes the same ``--n`` new files (default 20,000, a folder of their own) into an empty registry and into one that
already holds ``--fill`` entries (default 1,000,000), alternating ``--rounds`` times, so both see the same load; prints
CPU ms per file for each. For SQLite the full registry is the run's own ``registry.sqlite`` (copied); for Redis a
server this script starts is filled with ``--fill`` (collection, path) pairs by ``add_members``.

    nice -n 10 .venv/bin/python benchmarks/scale/bench_scale_index_control.py --base /tmp/scale-idx
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from headers import write_tree  # noqa: E402

from diana_core.embedded import SqliteRegistry  # noqa: E402
from diana_core.usecases.indexer import FileIndexer  # noqa: E402
from diana_redis import Redis  # noqa: E402
from diana_redis.testing import RedisServer  # noqa: E402


def cpu_ms_per_file(tree: str, reg: Any, n: int) -> float:
    t0 = time.process_time()
    result = FileIndexer().index_path(tree, reg)
    assert result.registered == n, result
    return (time.process_time() - t0) * 1000 / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--fill", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--base", required=True)
    ap.add_argument("--out", default="benchmarks/results/scale_index_control.json")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="control-", dir=args.base))
    tree = str(work / "tree")
    write_tree(tree, args.n)
    prefix = FileIndexer.prefix_for_path(tree)  # another folder: its collections never collide with the big tree's
    report: dict[str, Any] = {"n": args.n, "fill": args.fill, "load_before": os.getloadavg()}
    full_db = Path(args.base) / "registry.sqlite"
    results: dict[str, list[float]] = {"sqlite_empty": [], "sqlite_full": [], "redis_empty": [], "redis_full": []}
    with RedisServer() as empty_server, RedisServer() as full_server:
        empty = Redis(host=empty_server.host, port=empty_server.port)
        full = Redis(host=full_server.host, port=full_server.port)
        full.add_members(((f"A{i // 10:09d}", f"d{i // 1000:04d}/i{i:07d}.dcm") for i in range(args.fill)), "fill-")
        report["redis_full_keys"] = full._client().dbsize()
        for r in range(args.rounds):
            for label in ("sqlite_empty", "sqlite_full", "redis_empty", "redis_full")[:: 1 if r % 2 == 0 else -1]:
                reg: Any
                if label.startswith("sqlite"):
                    db = work / f"{label}-{r}.sqlite"
                    if label == "sqlite_full":
                        shutil.copy(full_db, db)
                    reg = SqliteRegistry(path=str(db))
                elif label == "redis_empty":
                    reg = empty
                    empty._client().flushdb()
                else:
                    reg = full
                    for name in list(full.collections(prefix)):  # this tree's entries of an earlier round
                        full.delete(name, prefix=prefix)
                results[label].append(cpu_ms_per_file(tree, reg, args.n))
                if label.startswith("sqlite"):
                    reg.close()
                    os.remove(db)
                print(label, round(results[label][-1], 3), flush=True)
    report["cpu_ms_per_file"] = {k: [round(v, 3) for v in vs] for k, vs in results.items()}
    report["median"] = {k: round(statistics.median(vs), 3) for k, vs in results.items()}
    report["full_over_empty"] = {
        "sqlite": round(report["median"]["sqlite_full"] / report["median"]["sqlite_empty"], 3),
        "redis": round(report["median"]["redis_full"] / report["median"]["redis_empty"], 3)}
    report["load_after"] = os.getloadavg()
    shutil.rmtree(work, ignore_errors=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report["median"]), report["full_over_empty"])


if __name__ == "__main__":
    main()
