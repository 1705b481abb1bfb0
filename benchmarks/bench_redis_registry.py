"""Benchmark: registering file paths in the Redis registry vs the strongest raw redis-py baseline.

Starts its own redis-server (diana_redis.testing.RedisServer) on a free loopback port. Every run registers the same
N paths (default 100,000; ~150 files per accession, as in CT studies) into sets named prefix + AccessionNumber, in
batches of the same size, one pipelined round trip per batch. The fair baseline groups each batch's paths per
collection by hand (one multi-member SADD per key) — what ``Redis.add_many`` does, minus Diana's bookkeeping (the
collection index set that lets listing and counting avoid KEYS, and the returned collection names).
``Redis.add_many`` takes (Dixel, prefix, keys, path) entries, so it reads two dicts of a Dixel per path;
``Redis.add_members`` takes the same (accession, path) pairs as the baseline. The naive one-SADD-per-file pipeline
is printed for context only. Each round runs the three in a rotating order; the ratio is taken per round and
printed as min/median/max, by wall clock and by CPU seconds (client + redis-server: less moved by other tenants).

    python benchmarks/bench_redis_registry.py [--n 100000] [--batch 5000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import statistics
import time

import redis

from diana_core import DicomLevel, Dixel
from diana_redis import Redis, prefix_for_path
from diana_redis.testing import RedisServer


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--per-study", type=int, default=150)
    args = ap.parse_args()
    n, batch, per_study = args.n, args.batch, args.per_study
    base = "/data/archive"
    prefix = prefix_for_path(base)
    files = [(f"ACC{i // per_study:06d}", f"{base}/{i // per_study:06d}/IM{i:07d}.dcm") for i in range(n)]
    entries = [
        (Dixel(meta={"FileName": fn}, tags={"AccessionNumber": acc}, level=DicomLevel.INSTANCES),
         prefix, "AccessionNumber", "FilePath", base)
        for acc, fn in files
    ]

    def naive(raw: redis.Redis) -> float:
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            pipe = raw.pipeline(transaction=False)
            for acc, fn in files[start:start + batch]:
                pipe.sadd(prefix + acc, fn)
            pipe.execute()
        return time.perf_counter() - t0

    def grouped(raw: redis.Redis) -> float:
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            by_key: dict[str, list[str]] = {}
            for acc, fn in files[start:start + batch]:
                by_key.setdefault(prefix + acc, []).append(fn)
            pipe = raw.pipeline(transaction=False)
            for key, members in by_key.items():
                pipe.sadd(key, *members)
            pipe.execute()
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {"naive": [], "grouped": [], "diana": [], "members": []}
    cpu: dict[str, list[float]] = {"grouped": [], "diana": [], "members": []}
    with RedisServer() as server:
        raw = redis.Redis(host=server.host, port=server.port)
        registry = Redis(host=server.host, port=server.port, batch_size=batch)

        def total() -> int:
            return sum(raw.scard(k) for k in raw.scan_iter(match=prefix + "*", count=1000))

        def server_cpu() -> float:
            info = raw.info("cpu")
            return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

        def timed(name: str) -> None:
            raw.flushall()
            c0, s0 = time.process_time(), server_cpu()
            t0 = time.perf_counter()
            if name == "grouped":
                grouped(raw)
            elif name == "diana":
                registry.add_many(entries)
            else:
                registry.add_members(files, prefix)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0 + server_cpu() - s0)
            assert total() == n, (name, total(), n)

        order = ["grouped", "diana", "members"]
        for r in range(args.rounds):
            for name in order[r % 3:] + order[:r % 3]:
                timed(name)
        assert registry.total(prefix) == n and sorted(registry.collections(prefix)) == sorted({a for a, _ in files})
        raw.flushall()
        times["naive"].append(naive(raw))
        raw.close()
        registry.close()

    print(f"redis registry: {n:,} file paths, {-(-n // per_study):,} collections, batch {batch}, {args.rounds} rounds")
    for name, label in (("grouped", "raw pipeline, SADDs grouped per key (baseline)"),
                        ("diana", "diana Redis.add_many (Dixel entries)"),
                        ("members", "diana Redis.add_members ((accession, path))"),
                        ("naive", "raw pipeline, one SADD per file (context)")):
        print(f"  {label:48s} {n / statistics.median(times[name]):10,.0f} paths/s (median)")
    for name in ("diana", "members"):
        ratios = [g / d for g, d in zip(times["grouped"], times[name], strict=True)]
        print(f"  ratio {name:7s} / grouped baseline: min {min(ratios):.2f}  median {statistics.median(ratios):.2f}  "
              f"max {max(ratios):.2f}")
    # the same rounds in CPU seconds (this process + redis-server): what other tenants of the machine do not move
    for name in ("diana", "members"):
        ratios = [g / d for g, d in zip(cpu["grouped"], cpu[name], strict=True)]
        print(f"  cpu ratio {name:7s} / grouped baseline: min {min(ratios):.2f}  median {statistics.median(ratios):.2f}"
              f"  max {max(ratios):.2f}")


if __name__ == "__main__":
    main()
