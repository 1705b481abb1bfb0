"""``--notify URL``: webhook summaries at job end / failure / dead-letter growth, against a real local HTTP server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture
def webhook():
    """A stdlib HTTP server on a free loopback port that records every POSTed JSON body."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "type": self.headers["Content-Type"], "body": json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/T0KEN", received
    server.shutdown()
    server.server_close()


def diana(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIANA_")}
    env["XDG_CONFIG_HOME"] = str(cwd / "config")
    return subprocess.run([sys.executable, "-m", "diana_core", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


def test_collect_posts_a_summary_without_ids_when_the_job_fails(webhook, tmp_path):
    url, received = webhook
    (tmp_path / "pacs").mkdir()
    (tmp_path / "wl.csv").write_text("AccessionNumber\nSECRETACC42\n")
    out = diana("--notify", url, "collect", "wl.csv", "./pacs", "./out", "--job-dir", "job", cwd=tmp_path)
    assert out.returncode == 1 and len(received) == 1, out.stderr
    post = received[0]
    assert post["path"] == "/hooks/T0KEN" and post["type"] == "application/json"
    body = post["body"]
    assert body["event"] == "job_failed" and body["command"] == "collect" and body["name"] == "wl"
    assert body["counts"]["failed"] == 1 and body["counts"]["studies"] == 1 and "failed 1" in body["text"]
    assert "SECRETACC42" not in json.dumps(body)


def test_slack_teams_text_payload_and_dead_letter_growth_in_watch(webhook, tmp_path):
    url, received = webhook
    import pydicom
    from pydicom.data import get_testdata_file

    (tmp_path / "in").mkdir()
    (tmp_path / "not-a-folder").write_text("a file where the destination folder should be")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIANA_")}
    log = tmp_path / "watch.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "diana_core", "-v", "--notify", url, "--notify-format", "text",
                                 "watch", "-r", "put_item", "./in", "./not-a-folder", "--retry-delays", "",
                                 "--deadletter", "dead.jsonl", "--max-seconds", "60"], cwd=tmp_path, env=env,
                                stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            wait_for(lambda: "watching its folder" in log.read_text(), what="the watcher to start")
            pydicom.dcmread(get_testdata_file("CT_small.dcm")).save_as(tmp_path / "in" / "x.dcm")
            wait_for(lambda: any("dead letters" in r["body"]["text"] for r in received), what="a dead-letter post")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    assert (tmp_path / "dead.jsonl").exists(), log.read_text()
    bodies = [r["body"] for r in received]
    assert all(set(b) == {"text"} for b in bodies), bodies  # Slack / Teams incoming-webhook shape
    assert any("dead letters" in b["text"] and "dead 1" in b["text"] for b in bodies), bodies
    assert bodies[-1]["text"].startswith("diana watch: watch stopped"), bodies


def wait_for(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_failing_webhook_never_fails_the_job(tmp_path):
    (tmp_path / "pacs").mkdir()
    (tmp_path / "wl.csv").write_text("AccessionNumber\nA1\n")
    out = diana("--notify", "http://127.0.0.1:9/nothing-listens", "--json", "collect", "wl.csv", "./pacs", "./out",
                cwd=tmp_path)
    assert out.returncode == 1 and json.loads(out.stdout)["failed"] == 1  # the job's own outcome, not the webhook's
    assert "notify: webhook 127.0.0.1:9 failed" in out.stderr and "nothing-listens" not in out.stderr
