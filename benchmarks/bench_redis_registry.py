"""Benchmark: registering file paths in the Redis registry vs a raw redis-py pipeline of the same SADDs.

Starts its own redis-server (diana_redis.testing.RedisServer) on a free loopback port. Both runs register the same
N paths (default 100,000; ~150 files per accession, as in CT studies) into sets named prefix + AccessionNumber, in
batches of the same size, one round trip per batch. Redis.add_many groups each batch's paths per collection
(one multi-member SADD per key), so a second baseline does the same by hand to show Diana's own overhead. Usage: python benchmarks/bench_redis_registry.py [N] [BATCH]
"""

from __future__ import annotations

import sys
import time

import redis

from diana_core import DicomLevel, Dixel
from diana_redis import Redis, prefix_for_path
from diana_redis.testing import RedisServer


def main(n: int = 100_000, batch: int = 5000, per_study: int = 150) -> None:
    base = "/data/archive"
    prefix = prefix_for_path(base)
    files = [(f"ACC{i // per_study:06d}", f"{base}/{i // per_study:06d}/IM{i:07d}.dcm") for i in range(n)]
    entries = [
        (Dixel(meta={"FileName": fn}, tags={"AccessionNumber": acc}, level=DicomLevel.INSTANCES),
         prefix, "AccessionNumber", "FilePath", base)
        for acc, fn in files
    ]
    with RedisServer() as server:
        raw = redis.Redis(host=server.host, port=server.port)
        registry = Redis(host=server.host, port=server.port, batch_size=batch)

        raw.flushall()
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            pipe = raw.pipeline(transaction=False)
            for acc, fn in files[start:start + batch]:
                pipe.sadd(prefix + acc, fn)
            pipe.execute()
        t_raw = time.perf_counter() - t0
        raw_total = sum(raw.scard(k) for k in raw.scan_iter(match=prefix + "*", count=1000))

        raw.flushall()  # the best a hand-written pipeline can do: one SADD per collection per batch
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            grouped: dict[str, list[str]] = {}
            for acc, fn in files[start:start + batch]:
                grouped.setdefault(prefix + acc, []).append(fn)
            pipe = raw.pipeline(transaction=False)
            for key, members in grouped.items():
                pipe.sadd(key, *members)
            pipe.execute()
        t_grouped = time.perf_counter() - t0

        raw.flushall()
        t0 = time.perf_counter()
        registry.add_many(entries)
        t_diana = time.perf_counter() - t0
        diana_total = registry.total(prefix)

        raw.close()
        registry.close()
    assert raw_total == diana_total == n, (raw_total, diana_total, n)
    print(f"redis registry: {n} file paths, {n // per_study + (n % per_study > 0)} collections, batch {batch}")
    print(f"  raw redis-py pipeline (1 SADD per file): {n / t_raw:10,.0f} paths/s  ({t_raw:.2f} s)")
    print(f"  raw pipeline, SADDs grouped per key:     {n / t_grouped:10,.0f} paths/s  ({t_grouped:.2f} s)")
    print(f"  diana Redis.add_many:                    {n / t_diana:10,.0f} paths/s  ({t_diana:.2f} s)")
    print(f"  ratio diana/raw: {t_raw / t_diana:.2f}x   (diana/grouped raw: {t_grouped / t_diana:.2f}x)")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
