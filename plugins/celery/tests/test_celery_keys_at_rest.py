"""The re-identification table in Redis (#26 defect 2), against a real redis-server with its append-only file on:
the coordinator deletes ``diana:job:<job>:keys`` once key.csv is durable (a rerun merges into that file), the AOF
keeps the rows until it is rewritten, and ``diana jobs purge --rewrite-aof`` removes the job and rewrites it."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from diana_orthanc.testdata import ct_dataset
from diana_redis.testing import RedisServer


@pytest.fixture
def aof_redis():
    """A redis-server of its own with ``appendonly yes`` (the setting docs/scaling.md asks for)."""
    server = RedisServer().start()
    client = redis.Redis(host=server.host, port=server.port, decode_responses=True)
    client.config_set("appendonly", "yes")
    wait_rewrite(client)
    try:
        yield server, client
    finally:
        client.close()
        server.stop()


def wait_rewrite(client: redis.Redis, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        info = client.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            return
        assert time.monotonic() < deadline, "AOF rewrite never finished"
        time.sleep(0.05)


def aof_bytes(client: redis.Redis) -> bytes:
    folder = Path(client.config_get("dir")["dir"])
    return b"".join(p.read_bytes() for p in folder.rglob("*.aof*") if p.is_file())


def pacs(tmp_path: Path, patients: range) -> Path:
    folder = tmp_path / "pacs"
    folder.mkdir(exist_ok=True)
    for p in patients:
        for i in range(2):
            ct_dataset(i, patient=p, run="keys-at-rest").save_as(folder / f"p{p}-{i}.dcm", enforce_file_format=True)
    return folder


def collect(client: redis.Redis, url: str, tmp_path: Path, patients: range) -> list[dict[str, str]]:
    from diana_celery.jobstate import RedisJobState
    from diana_core.usecases.collector import Collector
    from diana_dcmdir import DcmDir

    worklist = tmp_path / "wl.csv"
    worklist.write_text("AccessionNumber\n" + "".join(f"ACC{p:04d}0000\n" for p in patients))
    state = RedisJobState(client, "keys-job", broker=url)
    result = Collector(pool_size=2).run("keys", str(worklist), DcmDir(path=str(pacs(tmp_path, patients))),
                                        dest=DcmDir(path=str(tmp_path / "research")), anonymize=True,
                                        job_dir=tmp_path / "job", state=state)
    assert result.done + result.skipped == len(patients) and not result.failed, result
    with open(tmp_path / "job" / "key.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_key_rows_leave_redis_once_key_csv_is_durable_and_purge_rewrites_the_aof(aof_redis, tmp_path):
    server, client = aof_redis
    url = f"redis://{server.host}:{server.port}/0"
    rows = collect(client, url, tmp_path, range(1, 4))
    assert sorted(r["AccessionNumber"] for r in rows) == ["ACC00010000", "ACC00020000", "ACC00030000"]
    assert not client.exists("diana:job:keys-job:keys")  # the file is durable: no second copy in the broker
    assert client.hlen("diana:job:keys-job:entries") == 3  # the journal stays until purge
    wait_rewrite(client)
    assert b"ACC00010000" in aof_bytes(client)  # what the docs say: the AOF keeps deleted rows until a rewrite

    # a second run of the same job merges its new row into key.csv: the earlier runs' rows are not lost
    rows = collect(client, url, tmp_path, range(1, 5))
    assert sorted(r["AccessionNumber"] for r in rows)[-1] == "ACC00040000" and len(rows) == 4
    assert not client.exists("diana:job:keys-job:keys")

    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run([sys.executable, "-m", "diana_core", "--json", "jobs", "purge", str(tmp_path / "job"),
                          "--broker", url, "--job-id", "keys-job", "--rewrite-aof"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["shared_records_removed"] >= 2 and report["aof_rewrite_started"] is True
    assert list(client.scan_iter("diana:job:keys-job:*")) == []
    wait_rewrite(client)
    assert b"ACC0001" not in aof_bytes(client) and b"ACC0004" not in aof_bytes(client)
    assert len(list(csv.DictReader(open(tmp_path / "job" / "key.csv", encoding="utf-8")))) == 4  # the file stays
