"""`diana watch` while its destination, a real Orthanc, is down (#24): the loop keeps ticking (each upload is one
short attempt, retries are the watcher's own schedule), /healthz says "degraded: destination research down" with
HTTP 200 and never "stalled", SIGTERM ends the daemon within 5 s, and everything arrives once Orthanc is back."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from diana_orthanc.testdata import ct_bytes
from diana_orthanc.testing import free_port, new_credentials, orthanc_workdir
from tests.faults.helpers import DIANA, ENV, Node, kill9, wait_for


def drop(folder: Path, start: int, count: int) -> None:
    for i in range(start, start + count):
        (folder / f".f{i:03}").write_bytes(ct_bytes(i, study=i // 10, run="outage"))
        (folder / f".f{i:03}").rename(folder / f"f{i:03}.dcm")


def healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())["status"]
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["status"]
    except OSError:
        return 0, "no answer"


def stored(node: Node) -> int:
    return len(node.get("instances"))


def test_destination_outage_degrades_health_never_stalls_and_sigterm_is_prompt(tmp_path):
    user, password = new_credentials()
    with orthanc_workdir("diana-outage-") as workdir:
        node = Node(workdir, "research", "RESEARCH", user, password).start()
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        services = tmp_path / "services.json"
        services.write_text(json.dumps({"inbox": {"ctype": "ObservableDcmDir", "path": str(inbox)},
                                        "research": node.desc()}))
        status_port = free_port()
        cmd = [*DIANA, "-s", str(services), "watch", "-r", "upload_item", "inbox", "research", "--interval", "0.1",
               "--deadletter", str(tmp_path / "dead.jsonl"), "--status-port", str(status_port)]
        env = {**ENV, "XDG_STATE_HOME": str(tmp_path / "state")}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            wait_for(lambda: healthz(status_port)[0] == 200, what="the status server")
            drop(inbox, 0, 5)
            wait_for(lambda: stored(node) == 5, what="5 instances before the outage")

            node.stop()  # the destination goes away for a while
            drop(inbox, 5, 10)
            probes = []
            pause = threading.Event()
            for _ in range(24):  # 6 s of probes, as a liveness probe would send them
                probes.append(healthz(status_port))
                pause.wait(0.25)
            assert all(code == 200 for code, _ in probes), probes
            assert not [s for _, s in probes if s == "stalled"]
            assert ("degraded: destination research down" in {s for _, s in probes}), probes

            node.start()  # back: the scheduled retries deliver without a restart of the daemon
            wait_for(lambda: stored(node) == 15, timeout=60, what="15 instances after the outage")
            wait_for(lambda: healthz(status_port)[1] == "ok", what="health ok again")

            node.stop()  # down again; this time the daemon is stopped during the outage
            drop(inbox, 15, 5)
            wait_for(lambda: healthz(status_port)[1].startswith("degraded"), what="degraded again")
            started = time.monotonic()
            proc.terminate()
            _, err = proc.communicate(timeout=30)
            took = time.monotonic() - started
        finally:
            kill9(proc)
        assert took < 5.0, f"SIGTERM took {took:.1f} s"
        assert proc.returncode == 0, err[-2000:]
        assert not (tmp_path / "dead.jsonl").exists()  # nothing parked as failed: left for the next start

        node.start()
        again = subprocess.Popen([*cmd[:-2], "--max-seconds", "60"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE, text=True, env=env)
        try:
            wait_for(lambda: stored(node) == 20 or again.poll() is not None, timeout=60, what="all 20 delivered")
            assert stored(node) == 20
        finally:
            again.terminate()
            again.communicate(timeout=30)
            node.stop()
