"""Benchmark: the Collector (studies/minute) vs the same job scripted by hand over REST, same concurrency.

Starts a real Orthanc pair (local proxy + remote PACS) and a "research" Orthanc, stores N studies of realistic CT
instances (512x512 16-bit, full CT_small header, ~0.5 MB: benchmarks/realistic.py) on the remote, then moves them
all, pseudonymized, from the remote to research, round after round (alternating order):
  baseline  what a site would script with Orthanc alone, run by a thread pool of the SAME size as the Collector's:
            per accession C-FIND through the proxy, C-MOVE, /anonymize, stream the archive, POST it to research,
            delete the proxy copies — no journal, no key file, no completeness check;
  diana     ``Collector(pool_size=P).run(...)`` with a ProxiedDicom source (journal, key file, completeness check,
            Diana's one de-identification engine).
  same      (``--same``) the same-strength script of #27: C-FIND, C-MOVE, GET the study archive, dicognito on every
            instance (read, ``Anonymizer.anonymize``, write) into a stored zip, POST it, delete (pool of the same size)
  old       (``--old``) the Collector as before #27: scratch study zips deflated, and re-inflated for the zip-bomb
            check before they are sent (the same code with those two steps put back by the benchmark)
Research and the proxy are emptied between runs. Prints min/median/max of ours/baseline over the rounds, and the
client CPU per study (``time.process_time`` of this process, all threads; the baseline's de-identification runs in
Orthanc, so its client CPU is not comparable).

    .venv/bin/python benchmarks/bench_collector.py [--studies 8] [--per-study 20] [--pool 2] [--rounds 3] [--same]
                                                   [--old]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).parent))
from realistic import ratio_line, realistic_ct  # noqa: E402

from diana_core.pseudonym import Pseudonymizer  # noqa: E402
from diana_core.usecases.collector import Collector  # noqa: E402
from diana_orthanc import Orthanc  # noqa: E402
from diana_orthanc.testing import orthanc_workdir, start_orthanc, start_orthanc_pair  # noqa: E402
from diana_proxied import ProxiedDicom  # noqa: E402

os.environ.setdefault("DIANA_PSEUDONYM_KEY", "benchmark-key-not-secret")


def session(server) -> requests.Session:
    s = requests.Session()
    s.auth = (server.user, server.password)
    return s


def by_hand(pair, research, accessions: list[str], workdir: Path, pool: int) -> float:
    """The same job with plain REST calls, ``pool`` accessions at a time; returns seconds."""
    pseudo = Pseudonymizer()
    local_tls = threading.local()

    def sessions() -> tuple[requests.Session, requests.Session]:
        if not hasattr(local_tls, "pair"):
            local_tls.pair = (session(pair.local), session(research))
        return local_tls.pair

    def one(acc: str) -> None:
        local, dest = sessions()
        query = {"Level": "Study", "Query": {"AccessionNumber": acc, "PatientID": "", "PatientName": "",
                                             "PatientBirthDate": "", "PatientSex": "", "StudyInstanceUID": "",
                                             "StudyDate": "", "StudyTime": ""}}
        qid = local.post(f"{pair.local.url}/modalities/remote/query", json=query).json()["ID"]
        local.post(f"{pair.local.url}/queries/{qid}/answers/0/retrieve",
                   json={"TargetAet": pair.local.aet, "Synchronous": True}).raise_for_status()
        tags = local.get(f"{pair.local.url}/queries/{qid}/answers/0/content?simplify").json()
        oid = local.post(f"{pair.local.url}/tools/lookup", data=tags["StudyInstanceUID"]).json()[0]["ID"]
        anon = local.post(f"{pair.local.url}/studies/{oid}/anonymize",
                          json={"Replace": pseudo.replacement_map(tags), "Force": True}).json()["ID"]
        zpath = workdir / f"study-{acc}.zip"
        with local.get(f"{pair.local.url}/studies/{anon}/archive", stream=True) as r, open(zpath, "wb") as fh:
            for chunk in r.iter_content(1 << 20):
                fh.write(chunk)
        with open(zpath, "rb") as fh:
            dest.post(f"{research.url}/instances", data=fh).raise_for_status()
        zpath.unlink()
        local.delete(f"{pair.local.url}/studies/{anon}")
        local.delete(f"{pair.local.url}/studies/{oid}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=pool) as executor:
        list(executor.map(one, accessions))
    return time.perf_counter() - t0


def retrieve(local, pair, acc: str) -> str:
    """C-FIND through the proxy and C-MOVE the study to it; its Orthanc id on the proxy."""
    query = {"Level": "Study", "Query": {"AccessionNumber": acc, "PatientID": "", "PatientName": "",
                                         "PatientBirthDate": "", "PatientSex": "", "StudyInstanceUID": "",
                                         "StudyDate": "", "StudyTime": ""}}
    qid = local.post(f"{pair.local.url}/modalities/remote/query", json=query).json()["ID"]
    local.post(f"{pair.local.url}/queries/{qid}/answers/0/retrieve",
               json={"TargetAet": pair.local.aet, "Synchronous": True}).raise_for_status()
    tags = local.get(f"{pair.local.url}/queries/{qid}/answers/0/content?simplify").json()
    return str(local.post(f"{pair.local.url}/tools/lookup", data=tags["StudyInstanceUID"]).json()[0]["ID"])


def same_strength(pair, research, accessions: list[str], workdir: Path, pool: int) -> float:
    """The #27 same-strength script: archive from the proxy, dicognito per instance, one stored zip POSTed."""
    import io
    import zipfile

    import pydicom
    from dicognito.anonymizer import Anonymizer

    local_tls = threading.local()

    def one(acc: str) -> None:
        if not hasattr(local_tls, "pair"):
            local_tls.pair = (session(pair.local), session(research))
        local, dest = local_tls.pair
        oid = retrieve(local, pair, acc)
        archive = local.get(f"{pair.local.url}/studies/{oid}/archive").content
        anonymizer = Anonymizer(seed=f"bench-{acc}")  # one per study: its UIDs stay consistent within it
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(archive)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zout:
            for n, info in enumerate(m for m in zin.infolist() if not m.is_dir()):
                ds = pydicom.dcmread(io.BytesIO(zin.read(info)))
                anonymizer.anonymize(ds)
                buf = io.BytesIO()
                ds.save_as(buf)
                zout.writestr(f"{n:05d}.dcm", buf.getvalue())
        dest.post(f"{research.url}/instances", data=out.getvalue(),
                  headers={"Content-Type": "application/zip"}).raise_for_status()
        local.delete(f"{pair.local.url}/studies/{oid}")

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=pool) as executor:
        list(executor.map(one, accessions))
    return time.perf_counter() - t0


def ours(pair, research, accessions: list[str], workdir: Path, pool: int) -> float:
    """``Collector.run`` on the same accessions; returns seconds (asserts every study was done)."""
    source = ProxiedDicom(name="hospital", proxy_desc=pair.local.service_desc(), proxy_domain="remote")
    dest = Orthanc(name="research", **{k: v for k, v in research.service_desc().items() if k != "ctype"})
    t0 = time.perf_counter()
    result = Collector(pool_size=pool).run("bench", accessions, source, None, dest, anonymize=True,
                                           job_dir=workdir / f"job-{time.time_ns()}")
    elapsed = time.perf_counter() - t0
    assert result.ok and result.done == len(accessions), result.failed
    return elapsed


def old(pair, research, accessions: list[str], workdir: Path, pool: int) -> float:
    """``ours`` with the two steps #27 removed put back: deflated scratch zips, bomb re-check of our own zips."""
    import diana_core.usecases.relay as relay
    import diana_dcmdir.studyzips as studyzips

    saved = studyzips.mark_own_archive, relay.build_endpoint
    studyzips.mark_own_archive = lambda path: None
    relay.build_endpoint = lambda ctype, desc, **kw: saved[1](ctype, {**desc, "zip_compression": "deflated"}, **kw)
    try:
        return ours(pair, research, accessions, workdir, pool)
    finally:
        studyzips.mark_own_archive, relay.build_endpoint = saved


def count_instances(server) -> int:
    return len(session(server).get(f"{server.url}/instances").json())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=8)
    ap.add_argument("--per-study", type=int, default=20)
    ap.add_argument("--pool", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--same", action="store_true", help="also run the same-strength script (dicognito per instance)")
    ap.add_argument("--old", action="store_true", help="also run the collector as it was before #27")
    args = ap.parse_args()
    n = args.studies
    times: dict[str, list[float]] = {"hand": [], "ours": [], "same": [], "old": []}
    cpu: dict[str, list[float]] = {"hand": [], "ours": [], "same": [], "old": []}
    with orthanc_workdir("diana-bench-collect-") as wd:
        pair = start_orthanc_pair(wd)
        research = start_orthanc(wd, "research", "RESEARCH")
        try:
            remote = session(pair.remote)
            accessions = []
            for s in range(n):
                for i in range(args.per_study):
                    ds = realistic_ct(i % 10, study=s, series=i // 10, patient=s + 1, run="bench")
                    path = Path(wd) / "one.dcm"
                    ds.save_as(path, enforce_file_format=True)
                    remote.post(f"{pair.remote.url}/instances", data=path.read_bytes()).raise_for_status()
                accessions.append(str(ds.AccessionNumber))
            with tempfile.TemporaryDirectory() as tmp:
                for rnd in range(args.rounds):
                    runs = [("hand", by_hand), ("ours", ours)] + ([("same", same_strength)] if args.same else []) \
                        + ([("old", old)] if args.old else [])
                    for name, func in runs if rnd % 2 == 0 else reversed(runs):
                        research.reset()
                        pair.local.reset()
                        c0 = time.process_time()
                        elapsed = func(pair, research, accessions, Path(tmp), args.pool)
                        cpu[name].append(time.process_time() - c0)
                        assert count_instances(research) == n * args.per_study, name
                        times[name].append(elapsed)
        finally:
            research.stop()
            pair.stop()
    print(f"studies: {n} x {args.per_study} realistic CT instances, concurrency {args.pool} on both sides, "
          f"{args.rounds} rounds; load average {os.getloadavg()[0]:.1f} at the end")
    hand_times, our_times = times["hand"], times["ours"]
    print(f"baseline (REST by hand, pool {args.pool}): {n / min(hand_times) * 60:8.1f} studies/min (best round)")
    print(f"diana Collector (pool {args.pool}):        {n / min(our_times) * 60:8.1f} studies/min (best round)")
    print(ratio_line("ratio ours / baseline", [h / o for h, o in zip(hand_times, our_times, strict=True)]))
    names = ["hand", "ours"] + (["same"] if args.same else []) + (["old"] if args.old else [])
    print("client CPU s/study, min / median / max: " + "; ".join(
        f"{k} {min(cpu[k]) / n:.2f} / {statistics.median(cpu[k]) / n:.2f} / {max(cpu[k]) / n:.2f}" for k in names))
    if args.same:
        print(f"same-strength script (pool {args.pool}): {n / min(times['same']) * 60:8.1f} studies/min (best round)")
        print(ratio_line("ratio ours / same-strength", [h / o for h, o in zip(times["same"], our_times, strict=True)]))
    if args.old:
        print(f"Collector before #27 (pool {args.pool}):  {n / min(times['old']) * 60:8.1f} studies/min (best round)")
        print(ratio_line("ratio old / baseline", [h / o for h, o in zip(hand_times, times["old"], strict=True)]))
        print(ratio_line("ratio ours / old (rate)", [o / u for o, u in zip(times["old"], our_times, strict=True)]))
        print(ratio_line("ratio ours / old (client CPU)", [u / o for o, u in zip(cpu["old"], cpu["ours"],
                                                                                   strict=True)]))


if __name__ == "__main__":
    main()
