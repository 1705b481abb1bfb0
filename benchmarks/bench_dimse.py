"""Benchmark: Diana's DIMSE parts (pynetdicom) vs dcmtk's C++ tools, same run, same data, same servers.

Data: N realistic CT instances (512x512 16-bit pixels = 0.5 MB, a full CT header), one study. Three races, each
repeated R times (ours and dcmtk's interleaved in each round), reporting instances/second and the ratio:
  (1) C-STORE SCU into Orthanc's DICOM port: ``DicomNode.put_many`` vs ``storescu`` (Orthanc emptied before each);
      then at equal concurrency: ``put_many(workers=4)`` (4 associations) vs 4 ``storescu`` processes at once;
  (2) C-STORE SCP: ``DicomReceiver`` vs ``storescp``, both receiving the same folder from ``storescu``;
  (3) C-MOVE retrieve from dcmqrscp into a folder: ``DicomNode.get(view=FILE)`` vs ``movescu`` receiving itself
      (``--port``: movescu is its own Store SCP, like our node's receiver).
Every server and tool runs with TCP_NODELAY=1. Prints min/median/max of the ratios (ours / dcmtk).

    .venv/bin/python benchmarks/bench_dimse.py [--instances 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from diana_dimse import DicomNode, DicomReceiver
from diana_dimse.testdata import write_ct_study
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


def timed(func) -> float:
    t0 = time.perf_counter()
    func()
    return time.perf_counter() - t0


def race_store_scu(orthanc, files: list[Path], folder: Path) -> tuple[float, float]:
    node = DicomNode(name="orthanc", host="127.0.0.1", port=orthanc.dicom_port, aet=orthanc.aet)
    empty_orthanc(orthanc)
    ours = timed(lambda: node.put_many([str(p) for p in files]))
    assert count_orthanc(orthanc) == len(files)
    empty_orthanc(orthanc)
    theirs = timed(lambda: storescu(orthanc.dicom_port, [folder], aec=orthanc.aet))
    assert count_orthanc(orthanc) == len(files)
    return ours, theirs


def race_store_scu_parallel(orthanc, files: list[Path], parts: list[Path], workers: int) -> tuple[float, float]:
    """``put_many(workers=N)`` (N associations) vs N ``storescu`` processes at once, each sending a share."""
    node = DicomNode(name="orthanc", host="127.0.0.1", port=orthanc.dicom_port, aet=orthanc.aet)
    empty_orthanc(orthanc)
    ours = timed(lambda: node.put_many([str(p) for p in files], workers=workers))
    assert count_orthanc(orthanc) == len(files)
    empty_orthanc(orthanc)
    with ThreadPoolExecutor(workers) as pool:
        theirs = timed(lambda: list(pool.map(lambda part: storescu(orthanc.dicom_port, [part], aec=orthanc.aet),
                                             parts)))
    assert count_orthanc(orthanc) == len(files)
    return ours, theirs


def split_folder(files: list[Path], work: Path, n: int) -> list[Path]:
    """n folders of hard links, file k in folder k % n (the shares of n parallel storescu processes)."""
    parts = [work / f"share{i}" for i in range(n)]
    for i, part in enumerate(parts):
        part.mkdir()
        for f in files[i::n]:
            os.link(f, part / f.name)
    return parts


def race_store_scp(files: list[Path], folder: Path, work: Path) -> tuple[float, float]:
    from diana_dimse.testing import start_storescp

    for d in ("ours", "dcmtk"):
        shutil.rmtree(work / d, ignore_errors=True)
    receiver = DicomReceiver(name="bench", path=str(work / "ours"), port=free_port()).start()
    try:
        ours = timed(lambda: storescu(receiver.port, [folder], aec="DIANA"))
    finally:
        receiver.stop()
    assert len(list((work / "ours").rglob("*.dcm"))) == len(files)
    scp = start_storescp(work / "dcmtk")
    try:
        theirs = timed(lambda: storescu(scp.port, [folder], aec="STORESCP"))
    finally:
        scp.stop()
    assert len(list((work / "dcmtk").iterdir())) == len(files)
    return ours, theirs


def race_move(pacs, node: DicomNode, study_uid: str, movescu_port: int, n: int, work: Path) -> tuple[float, float]:
    for d in ("moved-ours", "moved-dcmtk"):
        shutil.rmtree(work / d, ignore_errors=True)
    (work / "moved-dcmtk").mkdir()
    ours = timed(lambda: node.get(study_uid, level="studies", view="file", dest=str(work / "moved-ours")))
    assert len(list((work / "moved-ours").iterdir())) == n
    theirs = timed(lambda: run_dcmtk("movescu", "-S", "-aet", "MOVESCU", "-aec", pacs.aet, "-aem", "MOVESCU",
                                     "--port", movescu_port, "-od", work / "moved-dcmtk", "-k",
                                     "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study_uid}", "127.0.0.1",
                                     pacs.port))
    assert len(list((work / "moved-dcmtk").iterdir())) == n
    return ours, theirs


def report(name: str, n: int, pairs: list[tuple[float, float]]) -> None:
    ratios = [theirs / ours for ours, theirs in pairs]  # time ratio = rate ratio (ours / dcmtk)
    ours_rate = statistics.median(n / o for o, _ in pairs)
    theirs_rate = statistics.median(n / t for _, t in pairs)
    print(f"{name}: ours {ours_rate:.0f} inst/s, dcmtk {theirs_rate:.0f} inst/s (medians); ratio ours/dcmtk "
          f"min {min(ratios):.2f} median {statistics.median(ratios):.2f} max {max(ratios):.2f} over {len(pairs)} runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=512, help="rows = columns of each CT image")
    parser.add_argument("--workers", type=int, default=4, help="associations of the parallel C-STORE race")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="diana-bench-dimse-"))
    try:
        folder = work / "study"
        files = write_ct_study(folder, 0, series=1, per_series=args.instances, size=args.size, run="bench-dimse")
        size_mb = sum(p.stat().st_size for p in files) / len(files) / 2**20
        print(f"{len(files)} CT instances of {size_mb:.2f} MB, {args.runs} runs per race, load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        orthanc = start_orthanc(work / "orthanc", "bench", "BENCH")
        receive_port, movescu_port = free_port(), free_port()
        pacs = start_dcmqrscp(work / "qr", "PACS", hosts={"diana": ("DIANA", "127.0.0.1", receive_port),
                                                          "movescu": ("MOVESCU", "127.0.0.1", movescu_port)})
        node = DicomNode(name="pacs", host="127.0.0.1", port=pacs.port, aet="PACS", receive_port=receive_port)
        try:
            storescu(pacs.port, [folder], aec="PACS")
            study_uid = next(iter(node.find({"AccessionNumber": "ACC00000000"}))).tags["StudyInstanceUID"]
            DicomNode(name="warm", host="127.0.0.1", port=orthanc.dicom_port, aet=orthanc.aet).put_many(
                [str(p) for p in files[:5]])  # warm-up: imports, first associations, page cache
            node.get(study_uid, level="studies", view="file", dest=str(work / "warm"))
            parts = split_folder(files, work, args.workers)
            scu, par, scp, move = [], [], [], []
            for _ in range(args.runs):
                scu.append(race_store_scu(orthanc, files, folder))
                par.append(race_store_scu_parallel(orthanc, files, parts, args.workers))
                scp.append(race_store_scp(files, folder, work))
                move.append(race_move(pacs, node, study_uid, movescu_port, len(files), work))
            report("C-STORE SCU into Orthanc (DicomNode.put_many vs storescu)", len(files), scu)
            report(f"C-STORE SCU into Orthanc, {args.workers} associations (put_many(workers={args.workers}) vs "
                   f"{args.workers} storescu processes at once)", len(files), par)
            report("C-STORE SCP from storescu (DicomReceiver vs storescp)", len(files), scp)
            report("C-MOVE retrieve from dcmqrscp (DicomNode.get vs movescu --port)", len(files), move)
            print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        finally:
            node.close()
            pacs.stop()
            orthanc.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
