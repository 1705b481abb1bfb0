"""End to end with real processes: redis-server as broker, `diana worker` OS processes, the Orthanc trio (remote PACS,
its proxy reached by C-FIND/C-MOVE, a research Orthanc). The coordinator is `diana collect|index --executor ...`.
"""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
import requests

from diana_celery.testing import WorkerProcess
from diana_orthanc.testdata import ct_bytes, write_small_ct
from diana_orthanc.testing import orthanc_workdir, start_orthanc

PER_STUDY = 2
PROXY_PW_ENV = "DIANA_TEST_RESEARCH_PASSWORD"


@pytest.fixture(scope="module")
def research():
    with orthanc_workdir("diana-celery-research-") as workdir:
        server = start_orthanc(workdir, "research", "RESEARCH")
        try:
            yield server
        finally:
            server.stop()


def _session(server) -> requests.Session:
    s = requests.Session()
    s.auth = (server.user, server.password)
    return s


def seed(remote, n: int, run: str) -> list[str]:
    """n studies of PER_STUDY instances (one patient each) on the remote PACS; their accession numbers."""
    s = _session(remote)
    for p in range(n):
        for i in range(PER_STUDY):
            s.post(f"{remote.url}/instances", data=ct_bytes(i, patient=p + 1, run=run)).raise_for_status()
    return [f"ACC{p + 1:04d}0000" for p in range(n)]


def sop_uids(server) -> list[str]:
    s = _session(server)
    return [i["MainDicomTags"]["SOPInstanceUID"] for i in s.get(f"{server.url}/instances?expand").json()]


class Cluster:
    """A job folder, a service file, and `diana worker` processes sharing one broker."""

    def __init__(self, tmp: Path, broker: redis.Redis, url: str, services: dict, env: dict[str, str]) -> None:
        self.tmp, self.redis, self.url, self.env = tmp, broker, url, env
        self.services = tmp / "services.json"
        self.services.write_text(json.dumps(services))
        self.workers: dict[str, WorkerProcess] = {}

    def start(self, *names: str, concurrency: int = 2, extra: tuple[str, ...] = ()) -> None:
        started = [WorkerProcess(name=f"{n}@test", services=self.services, log=self.tmp / f"{n}.log",
                                 concurrency=concurrency, env=self.env, extra=list(extra)).start() for n in names]
        for w in started:
            self.workers[w.name] = w.wait_ready(self.redis)

    def diana(self, *args: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "diana_core.cli", "-s", str(self.services), *args]
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=open(self.tmp / "coordinator.log", "w"),
                                env={**os.environ, **self.env}, text=True)

    def finish(self, proc: subprocess.Popen, timeout: float = 180) -> dict:
        out, _ = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, (self.tmp / "coordinator.log").read_text()[-3000:] + self.logs()
        return json.loads(out)

    def logs(self) -> str:
        return "".join(f"\n--- {n}\n{w.tail(1500)}" for n, w in self.workers.items())

    def stop(self) -> None:
        for w in self.workers.values():
            if w.proc is not None and w.proc.poll() is None:
                w.proc.terminate()
        for w in self.workers.values():
            w.stop()

    def entries(self, job: str) -> dict[str, dict]:
        return {k: json.loads(v) for k, v in self.redis.hgetall(f"diana:job:{job}:entries").items()}


@pytest.fixture()
def cluster(redis_clean, clean_orthancs, research, tmp_path):
    research.reset()
    url = f"redis://127.0.0.1:{redis_clean.port}/0"
    client = redis.Redis(host="127.0.0.1", port=redis_clean.port, decode_responses=True)
    services = {
        "hospital": {"ctype": "ProxiedDicom", "proxy_desc": clean_orthancs.local.service_desc(),
                     "proxy_domain": "remote"},
        "research": {**research.service_desc(), "password": "${" + PROXY_PW_ENV + "}"},
        "registry": {"ctype": "Redis", "host": "127.0.0.1", "port": redis_clean.port, "db": 1},
        "executor": {"ctype": "CeleryExecutor", "broker": url, "visibility_timeout": 6, "claim_ttl": 3},
    }
    env = {PROXY_PW_ENV: research.password, "DIANA_PSEUDONYM_KEY": "celery-e2e-key"}
    c = Cluster(tmp_path, client, url, services, env)
    try:
        yield c
    finally:
        c.stop()
        client.close()


def test_collect_20_studies_exactly_once_across_kill9_and_a_late_worker(cluster, clean_orthancs, research, tmp_path):
    from diana_celery.guard import RedisGuard
    from diana_core.protection import Limits

    accs = seed(clean_orthancs.remote, 20, run="celery-e2e")
    worklist = tmp_path / "worklist.csv"
    worklist.write_text("AccessionNumber\n" + "\n".join(accs) + "\n")
    cluster.start("wa", "wb")

    originals = set(accs)
    proxy = _session(clean_orthancs.local)
    peak = {"n": 0}
    abandoned: set[str] = set()  # the killed worker's retrieved copy waits on the proxy for its redelivery
    stop = threading.Event()

    def watch_proxy() -> None:  # simultaneous retrieved originals on the proxy = retrieves in flight
        while not stop.is_set():
            try:
                studies = proxy.get(f"{clean_orthancs.local.url}/studies?expand", timeout=10).json()
            except (requests.RequestException, ValueError):
                continue  # a study deleted between listing and expanding: look again
            n = sum(s["MainDicomTags"].get("AccessionNumber") in originals - abandoned for s in studies)
            peak["n"] = max(peak["n"], n)
            time.sleep(0.02)

    watcher = threading.Thread(target=watch_proxy, daemon=True)
    watcher.start()
    job = tmp_path / "job"
    proc = cluster.diana("--json", "collect", str(worklist), "hospital", "research", "--job-dir", str(job),
                         "--job-id", "e2e-20", "--max-retrieves", "2", "--rate", "2")
    # kill -9 worker A while it holds a study (resolved or sending), then start a third worker mid-job
    victim = None
    deadline = time.monotonic() + 60
    while victim is None and time.monotonic() < deadline:
        for key, e in cluster.entries("e2e-20").items():
            if e["worker"] == "wa@test" and e["status"] in ("resolved", "sending"):
                victim = key
                break
        time.sleep(0.01)
    assert victim is not None, cluster.logs()
    cluster.workers["wa@test"].kill9()
    abandoned.add(victim)  # not a retrieve in flight once its claim expires (the guard's own peak is checked below)
    # pause new retrieves (a closed window) while the late worker starts, so work is left for it to join
    guard = RedisGuard(cluster.redis)
    now = time.localtime()
    guard.publish({"hospital": Limits(max_concurrent=2, rate=2,
                                      window=f"{(now.tm_hour + 2) % 24:02d}:00-{(now.tm_hour + 3) % 24:02d}:00")})
    done_at_kill = sum(e["status"] == "done" for e in cluster.entries("e2e-20").values())
    cluster.start("wc", extra=("-l", "INFO"))
    # the window opens again only once the late worker holds a study at it too (its log says so): a worker is
    # announced before its consumer fetches, and under load B used to finish the rest before wc took one
    deadline = time.monotonic() + 60
    while "waits for its source (window)" not in cluster.workers["wc@test"].tail(50000):
        assert time.monotonic() < deadline, "the late worker took no study while the window was closed"
        time.sleep(0.05)
    guard.publish({"hospital": Limits(max_concurrent=2, rate=2)})
    summary = cluster.finish(proc)
    stop.set()
    watcher.join()

    assert summary["done"] + summary["skipped"] == 20 and summary["failed"] == 0, summary
    uids = sop_uids(research)
    assert len(uids) == 20 * PER_STUDY and len(set(uids)) == 20 * PER_STUDY  # every instance, exactly once
    entries = cluster.entries("e2e-20")
    assert {e["status"] for e in entries.values()} == {"done"} and len(entries) == 20
    assert entries[victim]["worker"] != "wa@test"  # the killed worker's study was redelivered and finished elsewhere
    assert done_at_kill < 20
    assert any(e["worker"] == "wc@test" for e in entries.values()), "the late worker joined the running job"
    assert 1 <= peak["n"] <= 2, peak  # --max-retrieves 2 held across all workers
    assert int(cluster.redis.get("diana:guard:hospital:peak")) <= 2
    status = subprocess.run([sys.executable, "-m", "diana_core.cli", "-s", str(cluster.services), "jobs", "status",
                             str(job), "--json"], capture_output=True, text=True, env={**os.environ, **cluster.env})
    assert status.returncode == 0, status.stderr
    st = json.loads(status.stdout)
    assert st["counts"] == {"done": 20} and st["total"] == 20 and st["remaining"] == 0 and st["executor"] == "celery"
    assert sum(st["per_worker"].values()) == 20 and "wc@test" in st["per_worker"] and st["studies_per_minute"] > 0
    rows = list(csv.DictReader(open(job / "key.csv")))
    assert sorted(r["AccessionNumber"] for r in rows) == sorted(accs)
    assert stat.S_IMODE(os.stat(job / "key.csv").st_mode) == 0o600
    assert not cluster.redis.exists("diana:job:e2e-20:keys")  # key.csv is durable: the broker forgot its copy
    # no secret travelled through the broker or the shared state
    raw = redis.Redis(host="127.0.0.1", port=cluster.redis.connection_pool.connection_kwargs["port"])
    dump = b" ".join(raw.dump(k) or b"" for k in raw.scan_iter("*"))
    raw.close()
    assert research.password.encode() not in dump and b"celery-e2e-key" not in dump


def test_outside_the_transfer_window_nothing_moves_until_it_opens(cluster, clean_orthancs, research, tmp_path):
    from diana_celery.guard import RedisGuard
    from diana_core.protection import Limits

    accs = seed(clean_orthancs.remote, 3, run="celery-window")
    worklist = tmp_path / "worklist.csv"
    worklist.write_text("AccessionNumber\n" + "\n".join(accs) + "\n")
    cluster.start("wa", "wb")
    now = time.localtime()
    closed = f"{(now.tm_hour + 2) % 24:02d}:00-{(now.tm_hour + 3) % 24:02d}:00"
    proc = cluster.diana("--json", "collect", str(worklist), "hospital", "research", "--job-dir",
                         str(tmp_path / "job"), "--job-id", "window", "--window", closed)
    guard = RedisGuard(cluster.redis)
    deadline = time.monotonic() + 30
    while guard.stats("hospital")["held"] < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert guard.stats("hospital")["held"] == 3, cluster.logs()  # all three studies are held by the workers
    time.sleep(1.0)  # ... and stay held: nothing reaches the PACS proxy or the research archive
    assert sop_uids(research) == []
    assert _session(clean_orthancs.local).get(f"{clean_orthancs.local.url}/studies").json() == []
    assert proc.poll() is None
    guard.publish({"hospital": Limits(window=f"{now.tm_hour:02d}:00-{(now.tm_hour + 2) % 24:02d}:00")})
    summary = cluster.finish(proc)
    assert summary["done"] == 3 and len(sop_uids(research)) == 3 * PER_STUDY


def test_index_fans_out_over_both_workers_with_the_in_process_counts(cluster, tmp_path):
    from diana_celery.executor import CeleryExecutor
    from diana_core.usecases.index_units import index_with
    from diana_core.usecases.indexer import FileIndexer
    from diana_redis import Redis

    base = tmp_path / "tree"
    for s in range(6):
        for n in range(5):
            write_small_ct(base / f"site{s % 3}" / f"day{s}" / f"im{n}.dcm", f"ACC{s}", n)
    (base / "site0" / "junk.dcm").write_bytes(b"not dicom")
    cluster.start("wa", "wb", concurrency=1)

    local = subprocess.run([sys.executable, "-m", "diana_core.cli", "--json", "index", str(base),
                            str(tmp_path / "local.sqlite")], capture_output=True, text=True)
    fanned = cluster.diana("--json", "index", str(base), "registry", "--executor", "executor")
    out, _ = fanned.communicate(timeout=120)
    a, b = json.loads(local.stdout), json.loads(out)
    assert (b["checked"], b["registered"], b["bad"]) == (a["checked"], a["registered"], a["bad"]) == (31, 30, 1)
    reg = Redis(name="registry", host="127.0.0.1", port=cluster.redis.connection_pool.connection_kwargs["port"], db=1)
    prefix = FileIndexer.prefix_for_path(str(base))
    assert sorted(reg.collections(prefix)) == [f"ACC{s}" for s in range(6)]
    assert FileIndexer.files_on_path(str(base), reg) == 30

    workers: set[str] = set()
    runner = CeleryExecutor(broker=cluster.url).executor()
    results = runner.results

    def recording():
        for res in results():
            workers.add(res.worker)
            yield res

    runner.results = recording  # type: ignore[method-assign]
    try:
        again = index_with(FileIndexer(), runner, str(base), reg, "*.dcm", "UNSTRUCTURED", None, "AccessionNumber",
                           None, dirs_per_unit=1)
    finally:
        runner.close()
    assert again.registered == 30
    assert workers == {"wa@test", "wb@test"}, workers


def test_a_second_worker_under_a_running_workers_name_is_refused_and_leaves_its_scratch(redis_clean, tmp_path):
    """Starting a worker purges its name's scratch folder (a killed predecessor's study archives); a second worker
    under a name that is still running must not wipe the live one's files: it waits briefly, then exits with one
    line saying why."""
    from diana_celery.jobstate import scratch_root

    url = f"redis://127.0.0.1:{redis_clean.port}/0"
    client = redis.Redis(host="127.0.0.1", port=redis_clean.port, decode_responses=True)
    services = tmp_path / "services.json"
    services.write_text(json.dumps({"executor": {"ctype": "CeleryExecutor", "broker": url}}))
    name = f"dup-{os.getpid()}@test"
    first = WorkerProcess(name=name, services=services, log=tmp_path / "first.log", concurrency=1).start()
    try:
        first.wait_ready(client)
        in_flight = scratch_root() / name / "study-in-flight.zip"
        in_flight.write_bytes(b"identified data being sent")
        second = WorkerProcess(name=name, services=services, log=tmp_path / "second.log", concurrency=1).start()
        assert second.proc is not None
        assert second.proc.wait(timeout=60) != 0
        assert "already running on this host" in second.tail() and "Traceback" not in second.tail()
        assert in_flight.read_bytes() == b"identified data being sent"  # the live worker's file is still there
    finally:
        first.stop()
        client.close()
    restarted = WorkerProcess(name=name, services=services, log=tmp_path / "third.log", concurrency=1).start()
    try:  # once the first is gone, the name is free again and its leftovers are purged
        restarted.wait_ready(redis.Redis(host="127.0.0.1", port=redis_clean.port, decode_responses=True))
        assert not in_flight.exists()
    finally:
        restarted.stop()


def test_a_restarted_default_worker_sweeps_the_killed_ones_study_archives(cluster, clean_orthancs, research, tmp_path):
    """#26 defect 1: kill -9 a worker (default name, diana@HOST) while it holds a study archive in its scratch;
    the restarted worker (same default name) sweeps every dead worker's scratch on the host, and once the job is
    done no zip or .part (identified data) is left anywhere under the scratch root."""
    import socket

    per_study, n = 10, 4
    proxy_admin = _session(clean_orthancs.remote)
    for p in range(n):
        for i in range(per_study):
            proxy_admin.post(f"{clean_orthancs.remote.url}/instances",
                             data=ct_bytes(i, patient=p + 1, run="scratch")).raise_for_status()
    worklist = tmp_path / "worklist.csv"
    worklist.write_text("AccessionNumber\n" + "\n".join(f"ACC{p + 1:04d}0000" for p in range(n)) + "\n")
    root = tmp_path / "tmp" / f"diana-{os.getuid()}"  # the scratch root of these workers ($TMPDIR/diana-UID)
    (tmp_path / "tmp").mkdir()
    cluster.env["TMPDIR"] = str(tmp_path / "tmp")
    orphan = root / "diana-4242@elsewhere"  # an older run's pid-named worker, dead: swept too
    orphan.mkdir(parents=True)
    (orphan / "study.zip").write_bytes(b"identified study of a worker killed long ago")

    name = f"diana@{socket.gethostname()}"

    def worker(log: str) -> WorkerProcess:
        return WorkerProcess(name=name, services=cluster.services, log=tmp_path / log, concurrency=2,
                             env=cluster.env, default_name=True).start().wait_ready(cluster.redis)

    def identified() -> list[Path]:
        return [p for p in root.rglob("*") if p.is_file() and p.name.endswith((".zip", ".part"))]

    first = worker("first.log")
    cluster.workers[name] = first
    proc = cluster.diana("--json", "collect", str(worklist), "hospital", "research", "--job-dir",
                         str(tmp_path / "job"), "--job-id", "scratch-kill")
    deadline = time.monotonic() + 90
    while not [p for p in identified() if orphan not in p.parents]:
        assert time.monotonic() < deadline and proc.poll() is None, first.tail() + cluster.logs()
        time.sleep(0.005)
    first.kill9()
    cluster.redis.delete(f"diana:worker:{name}")  # its announcement outlives it (TTL): wait for the new one's
    left = [p for p in identified() if orphan not in p.parents]
    assert left and all(p.relative_to(root).parts[0] == name for p in left), left  # the kill left archives behind
    cluster.workers[name] = worker("second.log")
    assert not any(p.exists() for p in left) and not orphan.exists(), (left, list(root.rglob("*")))  # swept at start
    summary = cluster.finish(proc)
    assert summary["done"] + summary["skipped"] == n and summary["failed"] == 0, summary
    assert len(set(sop_uids(research))) == n * per_study
    assert identified() == [] and not orphan.exists()
    assert [p.name for p in root.rglob("*") if p.is_file() and not p.name.endswith(".lock")] == []
