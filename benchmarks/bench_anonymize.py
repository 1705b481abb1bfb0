"""De-identification at I/O speed (issue #33): Diana's engine file to file against a plain Python byte copy.

Per round, on the same files (page cache warm, one process, one core), interleaved and in rotated order:
  copy      read the file's bytes, write them to a new file (the I/O floor Python allows)
  diana     ``anonymize_file``: read the bytes, the raw-bytes engine, the output written as new elements and slices
            of the input (no second copy of the file in memory)
  bytes     read the bytes, ``anonymize_bytes`` (the same engines, the output joined into new bytes), write them
  pydicom   the same engine through pydicom's full read and ``dcmwrite`` (the path before #33)
  dicognito ``dcmread`` + ``Anonymizer.anonymize`` + ``save_as`` + write
Printed: files/s and CPU ms per file (process time) per runner, and min/median/max of diana/copy (files/s ratio)
and diana/dicognito over the rounds; diana's engine paths (raw bytes / dataset of raw elements / pydicom), its
resident memory after each round (flat: nothing kept per file) and the load average. Two data sets: realistic 0.5 MB
CT (full CT_small header, 512x512) and ~40 KB instances (the same header, 128x128: headers dominate). Then the
fast/fallback split on pydicom's test corpus (default profile).
Usage: python benchmarks/bench_anonymize.py [N_FILES] [ROUNDS]
"""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from realistic import ratio_line, realistic_ct  # noqa: E402

from diana_core.pseudonym import Pseudonymizer  # noqa: E402
from diana_dcmdir import rawpath  # noqa: E402
from diana_dcmdir.rawpath import anonymize_bytes, anonymize_file, pydicom_path  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_files(folder: Path, n: int, size: int) -> list[Path]:
    paths = []
    for i in range(n):
        ds = realistic_ct(i, study=i * 2 // n, patient=i * 2 // n, run=f"anon{size}")
        if size != 512:
            ds.Rows = ds.Columns = size
            ds.PixelData = ds.PixelData[: size * size * 2]
        path = folder / f"in-{size}-{i:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def runner(kind: str, out: Path, pz: Pseudonymizer) -> Callable[[list[Path]], None]:
    def copy(paths: list[Path]) -> None:
        for i, p in enumerate(paths):
            (out / f"{i}.dcm").write_bytes(p.read_bytes())

    def diana(paths: list[Path]) -> None:
        for i, p in enumerate(paths):
            anonymize_file(p, out / f"{i}.dcm", pz)

    def diana_bytes(paths: list[Path]) -> None:
        for i, p in enumerate(paths):
            (out / f"{i}.dcm").write_bytes(anonymize_bytes(p.read_bytes(), pz, p.name)[0])

    def through_pydicom(paths: list[Path]) -> None:
        for i, p in enumerate(paths):
            (out / f"{i}.dcm").write_bytes(pydicom_path(p.read_bytes(), pz, p.name)[0])

    def dicognito(paths: list[Path]) -> None:
        import pydicom
        from dicognito.anonymizer import Anonymizer

        anonymizer = Anonymizer(seed="bench")
        for i, p in enumerate(paths):
            ds = pydicom.dcmread(io.BytesIO(p.read_bytes()))
            anonymizer.anonymize(ds)
            ds.save_as(out / f"{i}.dcm", enforce_file_format=True)

    return {"copy": copy, "diana": diana, "bytes": diana_bytes, "pydicom": through_pydicom,
            "dicognito": dicognito}[kind]


def measure(label: str, paths: list[Path], out: Path, rounds: int) -> None:
    pzs = {k: Pseudonymizer(key="bench") for k in ("diana", "bytes", "pydicom")}  # the default profile
    kinds = ["copy", "diana", "bytes", "pydicom", "dicognito"]
    runners = {k: runner(k, out, pzs.get(k, pzs["diana"])) for k in kinds}
    for k in kinds:
        runners[k](paths[:5])  # warm up: imports, caches, page cache
    rate: dict[str, list[float]] = {k: [] for k in kinds}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    rss: list[float] = []
    rawpath.STAGES.clear()
    for r in range(rounds):
        for k in kinds[r % len(kinds):] + kinds[:r % len(kinds)]:  # rotate who goes first
            w0, c0 = time.perf_counter(), time.process_time()
            runners[k](paths)
            wall, used = time.perf_counter() - w0, time.process_time() - c0
            rate[k].append(len(paths) / wall)
            cpu[k].append(used / len(paths) * 1000)
            if k == "diana":
                rss.append(rss_mib())
    size = sum(p.stat().st_size for p in paths) / len(paths) / 1024
    print(f"{label} ({size:.0f} KiB), {len(paths)} files x {rounds} rounds")
    for k in kinds:
        print(f"  {k:9s} median {statistics.median(rate[k]):7.0f} files/s  CPU {statistics.median(cpu[k]):6.2f} ms/file")
    print("  " + ratio_line("diana / copy (files/s)", [d / c for d, c in zip(rate["diana"], rate["copy"])]))
    print("  " + ratio_line("bytes / copy (files/s)", [d / c for d, c in zip(rate["bytes"], rate["copy"])]))
    print("  " + ratio_line("diana / dicognito (files/s)", [d / c for d, c in zip(rate["diana"], rate["dicognito"])]))
    print("  " + ratio_line("diana / pydicom path (files/s)", [d / c for d, c in zip(rate["diana"], rate["pydicom"])]))
    print(f"  diana engine paths: {pzs['diana'].report.paths}; by engine, diana and bytes runners: {dict(rawpath.STAGES)}")
    print(f"  diana resident memory after each round (MiB): {' '.join(f'{m:.0f}' for m in rss)}")
    print(f"  load average (1, 5, 15 min) at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


def corpus_split() -> None:
    """The engine's paths over pydicom's test corpus, as the report counts them (default profile, then with
    allow-burned-in: the instances the default quarantines are decided on pydicom's full read)."""
    import attrs
    from pydicom.data import get_testdata_files

    from diana_core.deid_profile import ALLOW_BURNED_IN
    from diana_dcmdir.anonymize import Quarantined

    files = [Path(p) for p in get_testdata_files() if Path(p).is_file()]
    default = Pseudonymizer(key="bench").profile
    for label, profile in (("default", default),
                           ("allow-burned-in", attrs.evolve(default, options=default.options | {ALLOW_BURNED_IN}))):
        pz = Pseudonymizer(key="bench", profile=profile)
        rawpath.STAGES.clear()
        errors = quarantined = 0
        for path in files:
            try:
                anonymize_bytes(path.read_bytes(), pz, path.name)
            except Quarantined:
                quarantined += 1
            except Exception:  # noqa: BLE001 - refused files (not DICOM, cut, no identifiers) are counted, not shown
                errors += 1
        print(f"pydicom corpus ({len(files)} files, {label}): {pz.report.paths} by engine {dict(rawpath.STAGES)}; "
              f"quarantined {quarantined}, refused {errors} (not DICOM, cut, no patient name or id)")


def main(n: int = 200, rounds: int = 5) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-anon-") as tmp:
        base = Path(tmp)
        out = base / "out"
        out.mkdir()
        for label, size in (("realistic CT 512x512, full CT_small header", 512), ("CT 128x128, same header", 128)):
            measure(label, make_files(base, n, size), out, rounds)
            for f in base.glob("in-*"):
                os.unlink(f)
    corpus_split()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    main(*args)
