"""Benchmark: the Collector (studies/minute) vs the same REST calls made sequentially by hand, same run.

Starts a real Orthanc pair (local proxy + remote PACS) and a "research" Orthanc, stores N studies on the remote,
then moves them all, pseudonymized, from the remote to research twice:
  (a) by hand: for each accession, C-FIND through the proxy, C-MOVE, /anonymize, stream the archive, POST it to
      research, delete the proxy copies — one REST call after the other;
  (b) ``Collector(pool_size=P).run(...)`` with a ProxiedDicom source (journal, key file, bounded parallelism).
Research and the proxy are emptied between runs. Prints both rates and the ratio.

    .venv/bin/python benchmarks/bench_collector.py [--studies 12] [--per-study 20] [--pool 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import requests

from diana_core.pseudonym import Pseudonymizer
from diana_core.usecases.collector import Collector
from diana_orthanc import Orthanc
from diana_orthanc.testdata import ct_bytes
from diana_orthanc.testing import orthanc_workdir, start_orthanc, start_orthanc_pair
from diana_proxied import ProxiedDicom


def session(server) -> requests.Session:
    s = requests.Session()
    s.auth = (server.user, server.password)
    return s


def by_hand(pair, research, accessions: list[str], workdir: Path) -> float:
    """The same work with plain sequential REST calls; returns seconds."""
    local, dest = session(pair.local), session(research)
    pseudo = Pseudonymizer()
    t0 = time.perf_counter()
    for acc in accessions:
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
        zpath = workdir / "study.zip"
        with local.get(f"{pair.local.url}/studies/{anon}/archive", stream=True) as r, open(zpath, "wb") as fh:
            for chunk in r.iter_content(1 << 20):
                fh.write(chunk)
        dest.post(f"{research.url}/instances", data=zpath.read_bytes()).raise_for_status()
        local.delete(f"{pair.local.url}/studies/{anon}")
        local.delete(f"{pair.local.url}/studies/{oid}")
    return time.perf_counter() - t0


def ours(pair, research, accessions: list[str], workdir: Path, pool: int) -> float:
    source = ProxiedDicom(name="hospital", proxy_desc=pair.local.service_desc(), proxy_domain="remote")
    dest = Orthanc(name="research", **{k: v for k, v in research.service_desc().items() if k != "ctype"})
    t0 = time.perf_counter()
    result = Collector(pool_size=pool).run("bench", accessions, source, None, dest, anonymize=True,
                                           job_dir=workdir / f"job-{time.time_ns()}")
    elapsed = time.perf_counter() - t0
    assert result.ok and result.done == len(accessions), result.failed
    return elapsed


def count_instances(server) -> int:
    return len(session(server).get(f"{server.url}/instances").json())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--studies", type=int, default=12)
    ap.add_argument("--per-study", type=int, default=20)
    ap.add_argument("--pool", type=int, default=2)
    args = ap.parse_args()
    with orthanc_workdir("diana-bench-collect-") as wd:
        pair = start_orthanc_pair(wd)
        research = start_orthanc(wd, "research", "RESEARCH")
        try:
            remote = session(pair.remote)
            accessions = []
            for s in range(args.studies):
                for i in range(args.per_study):
                    remote.post(f"{pair.remote.url}/instances",
                                data=ct_bytes(i % 10, study=s, series=i // 10, patient=s + 1, run="bench"))
                accessions.append(f"ACC{s + 1:04d}{s:04d}")
            n = args.studies
            with tempfile.TemporaryDirectory() as tmp:
                hand = by_hand(pair, research, accessions, Path(tmp))
                assert count_instances(research) == n * args.per_study
                research.reset()
                pair.local.reset()
                mine = ours(pair, research, accessions, Path(tmp), args.pool)
                assert count_instances(research) == n * args.per_study
        finally:
            research.stop()
            pair.stop()
    print(f"studies: {n} x {args.per_study} instances, pool {args.pool}")
    print(f"baseline (sequential REST by hand): {n / hand * 60:8.1f} studies/min  ({hand:.2f} s)")
    print(f"diana Collector:                     {n / mine * 60:8.1f} studies/min  ({mine:.2f} s)")
    print(f"ratio (ours / baseline):             {hand / mine:8.2f}")


if __name__ == "__main__":
    main()
