"""redis-server restarted while `diana watch` indexes new Orthanc instances into it: the handler's failures are
transient (Redis unreachable), retried with backoff, and every instance ends indexed exactly once."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile

import pytest
import redis

from diana_orthanc.testdata import ct_bytes
from diana_orthanc.testing import free_port
from tests.faults.helpers import DIANA, ENV, kill9, wait_for
from tests.faults.test_watch_faults import pacs  # noqa: F401 - the module's real Orthanc fixture

N = 20


class PersistentRedis:
    """A redis-server with an append-only file synced on every write, restartable on its port and data folder."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="diana-faults-redis-")
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "yes", "--appendfsync", "always", "--dir", self.dir,
                                      "--daemonize", "no", "--loglevel", "warning"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_for(lambda: self._ping(client), timeout=20, what="redis-server answering PING")

    @staticmethod
    def _ping(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None

    def members(self) -> set[str]:
        return {m.decode() for m in redis.Redis(port=self.port).smembers("diana:items")}


@pytest.fixture()
def registry():
    server = PersistentRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def test_redis_restarted_mid_job_loses_and_duplicates_nothing(pacs, registry, tmp_path):  # noqa: F811
    pacs.reset()
    last = pacs.get("changes?last")["Last"]
    ids = set()
    with pacs.session() as sess:
        for i in range(N):
            ids.add(sess.post(f"{pacs.url}/instances", data=ct_bytes(i, run="redis-restart"), timeout=30).json()["ID"])
    services = tmp_path / "services.json"
    services.write_text(json.dumps({
        "pacs": pacs.desc(ctype="ObservableOrthanc", polling_interval=0.05, start_from_change=last),
        "registry": {"ctype": "Redis", "host": "127.0.0.1", "port": registry.port},
    }))
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps([{"handler": "index_item", "source": "pacs", "dest": "registry",
                                   "event": "instance_added", "options": {"level": "instances"}}]))
    proc = subprocess.Popen([*DIANA, "-s", str(services), "watch", "-R", str(routes), "--interval", "0.05",
                             "--retry-delays", "0.5,1,2,4,8", "--deadletter", str(tmp_path / "dead.jsonl"),
                             "--ledger", str(tmp_path / "ledger.sqlite")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    try:
        wait_for(lambda: proc.poll() is not None or len(registry.members()) >= 1, what="indexing under way")
        registry.stop()
        registry.start()
        wait_for(lambda: proc.poll() is not None or len(registry.members()) >= N, what=f"{N} instances indexed")
    finally:
        kill9(proc)
    assert registry.members() == ids  # one key per instance (its Orthanc id): each indexed, none twice
    assert not (tmp_path / "dead.jsonl").exists()
