"""Benchmark: start-up CPU of ``diana --help``, ``diana plugins`` and a real command against ``python -c pass``.

Each round runs every command once as a fresh process, in a rotated order; CPU = user + system time of that child
(``resource.getrusage(RUSAGE_CHILDREN)`` before/after), wall time alongside. Prints min / median / max per command,
the ratio to ``python -c pass`` and whether the 0.25 s CPU target (#27) holds. The heavy libraries each command
imported (pydicom, requests, celery, pynetdicom, ...) are listed from one extra traced run.

Bytecode: with ``PYTHONDONTWRITEBYTECODE`` set and no ``__pycache__``, every run compiles every module from source
(3-4x slower); ``--compile`` byte-compiles the venv and the sources first (what ``uv sync --compile-bytecode`` and pip
do at install time).

    .venv/bin/python benchmarks/bench_startup.py [--rounds 7] [--compile]
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DIANA = [sys.executable, "-m", "diana_core.cli"]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "diana --help": [*DIANA, "--help"],
    "diana plugins": [*DIANA, "plugins"],
    "diana guid": [*DIANA, "guid", "MERCK^DEREK^L", "--age", "30", "--reference-date", "2020-01-01", "--unkeyed"],
}
HEAVY = ("pydicom", "pynetdicom", "requests", "celery", "redis", "numpy", "PIL", "watchdog", "dicognito", "rich")
TARGET_CPU = 0.25

TRACE = """
import runpy, sys
sys.argv = {argv!r}
try:
    runpy.run_module("diana_core.cli", run_name="__main__")
except SystemExit:
    pass
print("HEAVY:" + ",".join(sorted({{m.split(".")[0] for m in sys.modules}} & set({heavy!r}))), file=sys.stderr)
"""


def run(argv: list[str]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed: {proc.stderr.decode()[-500:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def heavy_imports(argv: list[str]) -> str:
    if argv[1] == "-c":
        return "-"
    code = TRACE.format(argv=["diana", *argv[3:]], heavy=HEAVY)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, cwd=ROOT)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("HEAVY:")), "HEAVY:?")
    return line[6:] or "none"


ENV = {**os.environ, "COLUMNS": "120"}
ENV.pop("DIANA_PLUGINS", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--compile", action="store_true", help="byte-compile site-packages and the sources first")
    args = parser.parse_args()
    if args.compile:
        for folder in (sysconfig.get_paths()["purelib"], ROOT / "diana_core", ROOT / "plugins"):
            compileall.compile_dir(str(folder), quiet=2, workers=2)
    pyc = any((Path(sysconfig.get_paths()["purelib"]) / "click" / "__pycache__").glob("*.pyc"))
    print(f"bytecode cached: {pyc}; PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}; "
          f"load average {os.getloadavg()[0]:.1f}")
    names = list(COMMANDS)
    for name in names:  # warm the page cache (and write bytecode where allowed)
        run(COMMANDS[name])
    cpu: dict[str, list[float]] = {n: [] for n in names}
    wall: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            c, w = run(COMMANDS[name])
            cpu[name].append(c)
            wall[name].append(w)
    base = statistics.median(cpu["python -c pass"])
    print(f"{args.rounds} rounds, CPU seconds (user+sys of the child) min / median / max, ratio of medians to "
          f"`python -c pass`; load average now {os.getloadavg()[0]:.1f}")
    print(f"{'command':18} {'CPU min':>8} {'median':>8} {'max':>8} {'wall med':>9} {'x pass':>7}  target  heavy imports")
    for name in names:
        med = statistics.median(cpu[name])
        ok = "-" if name.startswith("python") else ("met" if med <= TARGET_CPU else "MISSED")
        print(f"{name:18} {min(cpu[name]):8.3f} {med:8.3f} {max(cpu[name]):8.3f} {statistics.median(wall[name]):9.3f}"
              f" {med / base:7.1f}  {ok:6}  {heavy_imports(COMMANDS[name])}")


if __name__ == "__main__":
    main()
