"""Benchmark: Diana's DIMSE parts (dcmtk engine and pynetdicom engine) vs dcmtk's own tools, same run, same data.

Data: N realistic CT instances (``realistic.py``: 512x512 16-bit pixels, the full CT_small header, 0.5 MB), one
study. dcmtk's tools are called by absolute path (/usr/bin: pynetdicom installs Python scripts named storescu and
storescp into the venv). Each race is repeated R rounds, ours and the baseline alternating which goes first
(ABAB...); per race: instances/second, min/median/max of the ratio ours/baseline, and CPU per instance (this process
plus its child processes, so the receiver races include the storescu that sends, in both columns):
  (1) C-STORE SCU into Orthanc's DICOM port: ``DicomNode.put_many`` (engine dcmtk, then pynetdicom) vs storescu;
      then at equal concurrency: ``put_many(workers=4)`` vs 4 ``storescu`` processes at once;
  (2) C-STORE SCP: ``DicomReceiver`` (engine dcmtk, then pynetdicom; durable) vs ``storescp -pdu 131072`` (the
      largest PDU, which the dcmtk engine's storescp uses), from storescu;
  (3) C-MOVE retrieve from dcmqrscp into a folder: ``DicomNode.get(view=FILE)`` vs ``movescu`` receiving itself.
Every server and tool runs with TCP_NODELAY=1.

    .venv/bin/python benchmarks/bench_dimse.py [--instances 100] [--runs 5] [--only scp] [--engine dcmtk]

Work files go under /var/tmp (or --workdir): this machine's /tmp, where every test run creates and deletes files,
measured 0.5-0.7 ms of kernel CPU per file created against ~0.02 ms elsewhere on the same disk.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pydicom
import requests

from diana_dimse import DicomNode, DicomReceiver
from diana_dimse.testing import free_port, run_dcmtk, start_dcmqrscp, storescu
from diana_orthanc.testing import start_orthanc


def empty_orthanc(server) -> None:
    s = requests.Session()
    s.auth = (server.user, server.password)
    for pid in s.get(f"{server.url}/patients").json():
        s.delete(f"{server.url}/patients/{pid}").raise_for_status()


def count_orthanc(server) -> int:
    s = requests.Session()
    s.auth = (server.user, server.password)
    return int(s.get(f"{server.url}/statistics").json()["CountInstances"])


sys.path.insert(0, str(Path(__file__).parent))
from realistic import write_realistic_cts  # noqa: E402

STORESCU, STORESCP = "/usr/bin/storescu", "/usr/bin/storescp"
CPU: dict[str, list[float]] = {}  # race label -> CPU seconds per run


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(func, label: str = "") -> float:
    c0, t0 = _cpu(), time.perf_counter()
    func()
    elapsed = time.perf_counter() - t0
    if label:
        CPU.setdefault(label, []).append(_cpu() - c0)
    return elapsed


def alternate(round_no: int, ours, theirs) -> tuple[float, float]:
    """Run both, ours first in even rounds and the baseline first in odd ones (ABAB...)."""
    if round_no % 2 == 0:
        a = ours()
        return a, theirs()
    b = theirs()
    return ours(), b


def race_store_scu(orthanc, files: list[Path], folder: Path, engine: str, round_no: int) -> tuple[float, float]:
    node = DicomNode(name="orthanc", host="127.0.0.1", port=orthanc.dicom_port, aet=orthanc.aet, engine=engine)

    def ours() -> float:
        empty_orthanc(orthanc)
        took = timed(lambda: node.put_many([str(p) for p in files]), f"scu-{engine}")
        assert count_orthanc(orthanc) == len(files)
        return took

    def theirs() -> float:
        empty_orthanc(orthanc)
        took = timed(lambda: storescu(orthanc.dicom_port, [folder], aec=orthanc.aet), f"scu-storescu-{engine}")
        assert count_orthanc(orthanc) == len(files)
        return took

    return alternate(round_no, ours, theirs)


def race_store_scu_parallel(orthanc, files: list[Path], parts: list[Path], workers: int,
                            round_no: int) -> tuple[float, float]:
    """``put_many(workers=N)`` (engine dcmtk: N dcmsend runs) vs N ``storescu`` processes at once, a share each."""
    node = DicomNode(name="orthanc", host="127.0.0.1", port=orthanc.dicom_port, aet=orthanc.aet)

    def ours() -> float:
        empty_orthanc(orthanc)
        took = timed(lambda: node.put_many([str(p) for p in files], workers=workers), "par-ours")
        assert count_orthanc(orthanc) == len(files)
        return took

    def theirs() -> float:
        empty_orthanc(orthanc)
        with ThreadPoolExecutor(workers) as pool:
            took = timed(lambda: list(pool.map(lambda part: storescu(orthanc.dicom_port, [part], aec=orthanc.aet),
                                               parts)), "par-storescu")
        assert count_orthanc(orthanc) == len(files)
        return took

    return alternate(round_no, ours, theirs)


def split_folder(files: list[Path], work: Path, n: int) -> list[Path]:
    """n folders of hard links, file k in folder k % n (the shares of n parallel storescu processes)."""
    parts = [work / f"share{i}" for i in range(n)]
    for i, part in enumerate(parts):
        part.mkdir()
        for f in files[i::n]:
            os.link(f, part / f.name)
    return parts


def race_store_scp(files: list[Path], folder: Path, work: Path, engine: str, round_no: int) -> tuple[float, float]:
    """Time until storescu has sent everything (every instance answered success), into ours vs storescp."""
    from diana_dimse.testing import start_storescp

    # wall time: until storescu is done (every instance answered); CPU: from the server's start to its stop (the
    # server process is counted once reaped; the dcmtk engine finishes making files durable before stop returns)
    def ours() -> float:
        shutil.rmtree(work / "ours", ignore_errors=True)
        c0 = _cpu()
        receiver = DicomReceiver(name="bench", path=str(work / "ours"), port=free_port(), engine=engine).start()
        try:
            took = timed(lambda: storescu(receiver.port, [folder], aec="DIANA"))
        finally:
            receiver.stop()
        CPU.setdefault(f"scp-{engine}", []).append(_cpu() - c0)
        assert len([p for p in (work / "ours").rglob("*.dcm") if ".incoming" not in p.parts]) == len(files)
        return took

    def theirs() -> float:
        shutil.rmtree(work / "dcmtk", ignore_errors=True)
        c0 = _cpu()
        scp = start_storescp(work / "dcmtk", extra_args=["-pdu", "131072"])  # the PDU our storescp runs with
        try:
            took = timed(lambda: storescu(scp.port, [folder], aec="STORESCP"))
        finally:
            scp.stop()
        CPU.setdefault(f"scp-storescp-{engine}", []).append(_cpu() - c0)
        assert len(list((work / "dcmtk").iterdir())) == len(files)
        return took

    return alternate(round_no, ours, theirs)


def race_move(pacs, node: DicomNode, study_uid: str, movescu_port: int, n: int, work: Path,
              round_no: int) -> tuple[float, float]:
    def ours() -> float:
        shutil.rmtree(work / "moved-ours", ignore_errors=True)
        took = timed(lambda: node.get(study_uid, level="studies", view="file", dest=str(work / "moved-ours")),
                     "move-ours")
        assert len(list((work / "moved-ours").iterdir())) == n
        return took

    def theirs() -> float:
        shutil.rmtree(work / "moved-dcmtk", ignore_errors=True)
        (work / "moved-dcmtk").mkdir()
        took = timed(lambda: run_dcmtk("movescu", "-S", "-aet", "MOVESCU", "-aec", pacs.aet, "-aem", "MOVESCU",
                                       "--port", movescu_port, "-od", work / "moved-dcmtk", "-k",
                                       "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}",
                                       "127.0.0.1", pacs.port), "move-movescu")
        assert len(list((work / "moved-dcmtk").iterdir())) == n
        return took

    return alternate(round_no, ours, theirs)


def report(name: str, n: int, pairs: list[tuple[float, float]], cpu: tuple[str, str]) -> None:
    ratios = [theirs / ours for ours, theirs in pairs]  # time ratio = rate ratio (ours / baseline)
    ours_rate = statistics.median(n / o for o, _ in pairs)
    theirs_rate = statistics.median(n / t for _, t in pairs)
    ours_cpu, theirs_cpu = (statistics.median(CPU[k]) / n * 1000 for k in cpu)
    print(f"{name}: ours {ours_rate:.0f} inst/s, baseline {theirs_rate:.0f} inst/s (medians); ratio ours/baseline "
          f"min {min(ratios):.2f} median {statistics.median(ratios):.2f} max {max(ratios):.2f} over {len(pairs)} "
          f"rounds; CPU {ours_cpu:.2f} vs {theirs_cpu:.2f} ms/instance")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=4, help="associations of the parallel C-STORE race")
    parser.add_argument("--only", choices=("scu", "scp", "par", "move"), action="append",
                        help="run only these races (repeatable; default all)")
    parser.add_argument("--engine", choices=("dcmtk", "pynetdicom"), action="append",
                        help="only these engines in the scu/scp races (repeatable; default both)")
    parser.add_argument("--workdir", default=os.environ.get("TMPDIR", "/var/tmp"),
                        help="where the data, Orthanc and every receiver write (default /var/tmp or $TMPDIR)")
    args = parser.parse_args()
    only, engines = set(args.only or ("scu", "scp", "par", "move")), tuple(args.engine or ("dcmtk", "pynetdicom"))
    work = Path(tempfile.mkdtemp(prefix="diana-bench-dimse-", dir=args.workdir))
    try:
        folder = work / "study"
        files = write_realistic_cts(folder, args.instances, per_series=args.instances, run="bench-dimse")
        size_mb = sum(p.stat().st_size for p in files) / len(files) / 2**20
        print(f"{len(files)} CT instances of {size_mb:.2f} MB, {args.runs} rounds per race, load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        orthanc = start_orthanc(work / "orthanc", "bench", "BENCH")
        receive_port, movescu_port = free_port(), free_port()
        pacs = start_dcmqrscp(work / "qr", "PACS", hosts={"diana": ("DIANA", "127.0.0.1", receive_port),
                                                          "movescu": ("MOVESCU", "127.0.0.1", movescu_port)})
        node = DicomNode(name="pacs", host="127.0.0.1", port=pacs.port, aet="PACS", receive_port=receive_port)
        try:
            storescu(pacs.port, [folder], aec="PACS")
            study_uid = str(pydicom.dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
            DicomNode(name="warm", host="127.0.0.1", port=orthanc.dicom_port, aet=orthanc.aet).put_many(
                [str(p) for p in files[:5]])  # warm-up: imports, first associations, page cache
            node.get(study_uid, level="studies", view="file", dest=str(work / "warm"))
            parts = split_folder(files, work, args.workers)
            races: dict[str, list[tuple[float, float]]] = {}
            for r in range(args.runs):
                for engine in engines:
                    if "scu" in only:
                        races.setdefault(f"scu-{engine}", []).append(race_store_scu(orthanc, files, folder, engine,
                                                                                    r))
                    if "scp" in only:
                        races.setdefault(f"scp-{engine}", []).append(race_store_scp(files, folder, work, engine, r))
                if "par" in only:
                    races.setdefault("par", []).append(race_store_scu_parallel(orthanc, files, parts, args.workers,
                                                                               r))
                if "move" in only:
                    races.setdefault("move", []).append(race_move(pacs, node, study_uid, movescu_port, len(files),
                                                                  work, r))
            n = len(files)
            for engine in engines if "scu" in only else ():
                report(f"C-STORE SCU into Orthanc, engine {engine} (DicomNode.put_many vs {STORESCU})", n,
                       races[f"scu-{engine}"], (f"scu-{engine}", f"scu-storescu-{engine}"))
            for engine in engines if "scp" in only else ():
                report(f"C-STORE SCP from storescu, engine {engine} (DicomReceiver vs {STORESCP})", n,
                       races[f"scp-{engine}"], (f"scp-{engine}", f"scp-storescp-{engine}"))
            if "par" in only:
                report(f"C-STORE SCU into Orthanc, {args.workers} associations (put_many(workers={args.workers}) "
                       f"vs {args.workers} storescu processes at once)", n, races["par"], ("par-ours", "par-storescu"))
            if "move" in only:
                report("C-MOVE retrieve from dcmqrscp (DicomNode.get vs movescu --port)", n, races["move"],
                       ("move-ours", "move-movescu"))
            print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        finally:
            node.close()
            pacs.stop()
            orthanc.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
