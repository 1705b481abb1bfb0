"""File names with PHI stay off the status server, /metrics, notifications and INFO+ logs of a real ``diana watch``
(#26 defect 3): a keyed hash stands in for them, and the names appear only with ``--show-ids``."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

NAME = "HELDOUTNAME_P0_HOACC0ZZ_report.dcm"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.read().decode("utf-8")
    except OSError:
        return ""


def wait_for(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return value


@pytest.fixture
def webhook():
    """A local HTTP server standing in for a Slack/Teams webhook: keeps every body posted to it."""
    posted: list[str] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's name
            posted.append(self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", posted
    server.shutdown()
    server.server_close()


def run_watch(tmp_path: Path, url: str, *flags: str) -> tuple[str, str, str, str]:
    """Drop a non-DICOM file with a PHI name into a watched folder; (status.json, /metrics, page, stderr)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    services = tmp_path / "services.yml"
    services.write_text(f"inbox: {{ctype: ObservableDcmDir, path: {inbox}, settle_interval: 0.05, "
                        f"polling_interval: 0.05}}\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIANA_") or k == "DIANA_PSEUDONYM_KEY"}
    log = tmp_path / "watch.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "diana_core", *flags, "--notify", url, "-s", str(services),
                                 "watch", "-r", "put_item", "inbox", str(tmp_path / "out"), "--interval", "0.1",
                                 "--status-port", str(port), "--deadletter", str(tmp_path / "dead.jsonl")],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: get(base + "/healthz"), "the status server")
            (tmp_path / "x.tmp").write_bytes(b"not dicom at all, but named after a patient\n" * 4)
            (tmp_path / "x.tmp").rename(inbox / NAME)
            wait_for(lambda: json.loads(get(base + "/status.json") or "{}").get("dead", 0) >= 1, "a dead letter")
            wait_for(lambda: json.loads(get(base + "/status.json"))["last_errors"], "an error on the page")
            status, metrics, page = get(base + "/status.json"), get(base + "/metrics"), get(base + "/")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return status, metrics, page, log.read_text()


def test_without_show_ids_a_keyed_hash_stands_for_the_file_name(tmp_path, webhook):
    url, posted = webhook
    status, metrics, page, stderr = run_watch(tmp_path, url)
    errors = json.loads(status)["last_errors"]
    assert errors and all(NAME not in e["message"] and "HELDOUTNAME" not in e["message"] for e in errors), errors
    assert re.search(r"failed on id:[0-9a-f]{10}, not retried", errors[-1]["message"]), errors
    for text in (status, metrics, page, stderr, *posted):
        assert "HELDOUTNAME" not in text and "HOACC0ZZ" not in text, text[:400]
    wait_for(lambda: any("dead_letters" in p or "watch_stopped" in p for p in posted), "a notification")
    assert NAME in (tmp_path / "dead.jsonl").read_text()  # the owner-only dead-letter file keeps it for replay


def test_with_show_ids_the_file_name_is_shown(tmp_path, webhook):
    url, _ = webhook
    status, _, _, stderr = run_watch(tmp_path, url, "--show-ids")
    assert any(f"failed on {NAME}" in e["message"] for e in json.loads(status)["last_errors"]), status
    assert NAME in stderr
