"""Benchmark: what the receiver's delivery contract costs (#24). ``DicomReceiver`` answers C-STORE success only once
the file and its folder are fsynced and a pending mark sits beside it (``durable: true``, the default); the baseline
is the same receiver with ``durable: false`` (atomic rename, no fsync, no mark), same run, same data, same senders.

Data: N realistic CT instances (512x512 16-bit, 0.5 MB, full CT header) split over S folders sent at once by S
``storescu`` processes (a modality per association, as hospitals send). R rounds, durable and baseline interleaved,
order alternating per round. Prints instances/s and the ratio (durable / baseline); the target is >= 0.85.

    .venv/bin/python benchmarks/bench_receiver_durability.py [--instances 200] [--senders 3] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.realistic import ratio_line, write_realistic_cts
from diana_dimse import DicomReceiver
from diana_dimse.testing import DCMTK_ENV, free_port


def receive(work: Path, folders: list[Path], durable: bool, n: int) -> float:
    """Seconds for the senders to be answered for every instance by a receiver with/without the contract."""
    target = work / ("durable" if durable else "plain")
    shutil.rmtree(target, ignore_errors=True)
    receiver = DicomReceiver(name="bench", path=str(target), port=free_port(), durable=durable).start()
    try:
        started = time.perf_counter()
        senders = [subprocess.Popen(["/usr/bin/storescu", "-aec", "DIANA", "+sd", "+r", "127.0.0.1",
                                     str(receiver.port), str(folder)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, env={**os.environ, **DCMTK_ENV}) for folder in folders]
        for sender in senders:
            assert sender.wait() == 0
        took = time.perf_counter() - started
    finally:
        receiver.stop()
    stored = [p for p in target.rglob("*.dcm") if not p.name.startswith(".")]
    assert len(stored) == n, f"{len(stored)} of {n} stored"
    marks = len(list(target.rglob(".*.pending")))
    assert marks == (n if durable else 0)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="diana-bench-durable-") as tmp:
        work = Path(tmp)
        per = args.instances // args.senders
        folders = []
        for s in range(args.senders):
            write_realistic_cts(work / f"src{s}", per, per_series=per, per_study=1, run=f"durable-{s}")
            folders.append(work / f"src{s}")
        n = per * args.senders
        durable, plain = [], []
        for round_ in range(args.runs):
            order = (True, False) if round_ % 2 == 0 else (False, True)
            for flag in order:
                (durable if flag else plain).append(receive(work, folders, flag, n))
        ratios = [p / d for d, p in zip(durable, plain)]  # rate ratio = time of baseline / time durable
        print(f"{n} realistic CT instances (0.5 MB) from {args.senders} storescu senders at once, {args.runs} rounds")
        print(f"durable (fsync file + folder, pending mark): median {n / statistics.median(durable):.0f} inst/s")
        print(f"baseline (durable: false):                   median {n / statistics.median(plain):.0f} inst/s")
        print(ratio_line("ratio durable / baseline (target >= 0.85)", ratios))
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
