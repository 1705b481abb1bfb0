"""Benchmark: DICOMweb through ``DicomWeb`` vs Orthanc's own REST API, on one real Orthanc with its DICOMweb plugin.

Same run, same server, same files (``realistic.py``: 512x512 16-bit CT instances, ~0.5 MB, CT_small's full header):
- store: ``DicomWeb.put_many`` (STOW-RS, multipart batches) vs raw ``requests`` POST /instances, one file per
  request, from a thread pool of the same size (one shared session); Orthanc is emptied before each upload;
- retrieve: ``DicomWeb.get(study, view=FILE, dest=zip)`` (WADO-RS streamed into a zip) vs GET
  /studies/{id}/archive streamed to a file (what the issue names), and vs the stronger baseline of GET
  /instances/{id}/file from a thread pool of the same size written into a stored zip.
Rounds alternate the order; prints each rate and ours / baseline as min / median / max.

    .venv/bin/python benchmarks/bench_dicomweb.py [--n 1000] [--workers 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter

from diana_core.dicom import orthanc_id
from diana_dicomweb import DicomWeb
from diana_dicomweb.testing import dicomweb_url, start_orthanc_dicomweb
from diana_orthanc.testing import orthanc_workdir

sys.path.insert(0, str(Path(__file__).parent))
from realistic import ratio_line, realistic_ct, write_realistic_cts  # noqa: E402


def rest_store(server, paths: list[Path], workers: int) -> float:
    """Baseline: one POST /instances per file from ``workers`` threads (shared session); seconds."""
    sess = requests.Session()
    sess.auth = (server.user, server.password)
    sess.mount("http://", HTTPAdapter(pool_maxsize=workers))

    def post(path: Path) -> None:
        sess.post(f"{server.url}/instances", data=path.read_bytes(), timeout=60).raise_for_status()

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(post, paths))
    elapsed = time.perf_counter() - t0
    sess.close()
    return elapsed


def stow_store(dw: DicomWeb, paths: list[Path], workers: int) -> float:
    t0 = time.perf_counter()
    result = dw.put_many(paths, workers=workers)
    elapsed = time.perf_counter() - t0
    assert result.done == len(paths) and not result.failed, result
    return elapsed


def rest_archive(server, study_oid: str, dest: Path) -> float:
    """Baseline: GET /studies/{id}/archive streamed to a file; seconds."""
    sess = requests.Session()
    sess.auth = (server.user, server.password)
    t0 = time.perf_counter()
    with sess.get(f"{server.url}/studies/{study_oid}/archive", stream=True, timeout=600) as response:
        response.raise_for_status()
        with open(dest, "wb") as fh:
            for chunk in response.iter_content(chunk_size=2**20):
                fh.write(chunk)
    elapsed = time.perf_counter() - t0
    sess.close()
    return elapsed


def rest_files(server, study_oid: str, dest: Path, workers: int) -> float:
    """Stronger baseline: GET /instances/{id}/file for each instance of the study from ``workers`` threads,
    written into a stored zip by the main thread; seconds."""
    sess = requests.Session()
    sess.auth = (server.user, server.password)
    sess.mount("http://", HTTPAdapter(pool_maxsize=workers))

    def fetch(oid: str) -> bytes:
        response = sess.get(f"{server.url}/instances/{oid}/file", timeout=60)
        response.raise_for_status()
        return response.content

    t0 = time.perf_counter()
    oids = [i["ID"] for i in sess.get(f"{server.url}/studies/{study_oid}/instances", timeout=60).json()]
    with ThreadPoolExecutor(max_workers=workers) as pool, zipfile.ZipFile(dest, "w") as archive:
        for n, data in enumerate(pool.map(fetch, oids)):
            archive.writestr(f"IM{n:06d}.dcm", data)
    elapsed = time.perf_counter() - t0
    sess.close()
    return elapsed


def wado_archive(dw: DicomWeb, study_uid: str, dest: Path) -> float:
    t0 = time.perf_counter()
    dw.get(study_uid, view="file", dest=dest)
    return time.perf_counter() - t0


def members(path: Path) -> int:
    with zipfile.ZipFile(path) as archive:
        return len([m for m in archive.namelist() if m.endswith(".dcm") or not m.endswith("/")])


def count(server) -> int:
    with requests.Session() as sess:
        sess.auth = (server.user, server.password)
        return int(sess.get(f"{server.url}/statistics", timeout=30).json()["CountInstances"])


def summary(label: str, ours: list[float], base: list[float], items: int, unit: str) -> None:
    ratios = [b / o for o, b in zip(ours, base)]  # time ratio = rate ratio (same amount of work)
    print(f"{label}: ours {statistics.median([items / t for t in ours]):.0f} {unit}/s, "
          f"baseline {statistics.median([items / t for t in base]):.0f} {unit}/s (medians)")
    print("  " + ratio_line("ours / baseline", ratios))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="instances stored per upload (default 1000)")
    ap.add_argument("--workers", type=int, default=4, help="concurrent requests of both uploaders (default 4)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of each (default 3)")
    args = ap.parse_args()
    per_series = 100
    per_study = max(1, args.n // 2 // per_series)  # series per study: two studies

    with orthanc_workdir("diana-bench-dicomweb-") as work:
        t0 = time.perf_counter()
        paths = write_realistic_cts(work / "files", args.n, per_series=per_series, per_study=per_study,
                                    run="bench-dicomweb")
        size = sum(p.stat().st_size for p in paths) / len(paths)
        print(f"generated {len(paths)} CT instances ({size / 2**20:.2f} MiB each) in {time.perf_counter() - t0:.1f} s")
        server = start_orthanc_dicomweb(work, "benchdw")
        dw = DicomWeb(name="bench", url=dicomweb_url(server), auth="basic", user=server.user,
                      password=server.password, workers=args.workers)
        try:
            store: dict[str, list[float]] = {"stow": [], "rest": []}
            for r in range(args.rounds):
                order = (("stow", stow_store), ("rest", rest_store))
                for name, func in order if r % 2 == 0 else order[::-1]:
                    server.reset()
                    target = dw if name == "stow" else server
                    store[name].append(func(target, paths, args.workers))  # type: ignore[operator]
                    assert count(server) == len(paths), f"{name}: Orthanc holds {count(server)} instances"
                    print(f"  round {r + 1} {name}: {len(paths) / store[name][-1]:.0f} inst/s")
            summary(f"store {len(paths)} instances, {args.workers} concurrent requests", store["stow"],
                    store["rest"], len(paths), "inst")

            first = realistic_ct(0, study=0, series=0, patient=0, run="bench-dicomweb")
            study_uid = str(first.StudyInstanceUID)
            study_oid = orthanc_id(str(first.PatientID), study_uid)
            study_size = min(per_study * per_series, len(paths))
            fetch: dict[str, list[float]] = {"wado": [], "archive": [], "files": []}
            for r in range(args.rounds):
                names = ("wado", "archive", "files")
                for name in names if r % 2 == 0 else names[::-1]:
                    dest = work / f"{name}-{r}.zip"
                    if name == "wado":
                        fetch[name].append(wado_archive(dw, study_uid, dest))
                    elif name == "archive":
                        fetch[name].append(rest_archive(server, study_oid, dest))
                    else:
                        fetch[name].append(rest_files(server, study_oid, dest, args.workers))
                    assert members(dest) == study_size, f"{name}: {members(dest)} instances in the zip"
                    dest.unlink()
                    print(f"  round {r + 1} {name}: {study_size / fetch[name][-1]:.0f} inst/s")
            summary(f"retrieve a study of {study_size} instances into a zip (vs GET /studies/{{id}}/archive)",
                    fetch["wado"], fetch["archive"], study_size, "inst")
            summary(f"retrieve a study of {study_size} instances into a zip (vs {args.workers} threads of GET "
                    "/instances/{id}/file)", fetch["wado"], fetch["files"], study_size, "inst")
        finally:
            dw.close()
            server.stop()


if __name__ == "__main__":
    main()
