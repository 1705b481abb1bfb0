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
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIANA_") or k == "DIANA_PSEUDONYM_KEY"}
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
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIANA_") or k == "DIANA_PSEUDONYM_KEY"}
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


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on a free loopback port that keeps every mail it receives."""
    import socket

    from aiosmtpd.controller import Controller

    mails: list[dict] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            mails.append({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                          "content": envelope.content.decode("utf-8", "replace")})
            return "250 OK"

    with socket.socket() as probe:  # aiosmtpd's controller needs a concrete port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, mails
    controller.stop()


def test_notify_takes_an_apprise_mailto_url_and_the_mail_arrives(smtp_server, tmp_path):
    """``--notify mailto://...`` (the apprise extra) sends the job summary as a mail through a real SMTP server."""
    port, mails = smtp_server
    (tmp_path / "pacs").mkdir()
    (tmp_path / "wl.csv").write_text("AccessionNumber\nSECRETACC42\n")
    url = f"mailto://127.0.0.1:{port}?from=diana@example.org&to=ops@example.org"
    out = diana("--notify", url, "collect", "wl.csv", "./pacs", "./out", "--job-dir", "job", cwd=tmp_path)
    assert out.returncode == 1 and len(mails) == 1, out.stderr
    import email

    mail = mails[0]
    assert mail["from"] == "diana@example.org" and mail["to"] == ["ops@example.org"]
    message = email.message_from_string(mail["content"])
    body = next(p.get_payload(decode=True).decode() for p in message.walk() if p.get_content_type() == "text/plain")
    assert message["Subject"] == "diana collect: job failed" and "studies 1" in body and "failed 1" in body, body
    assert "SECRETACC42" not in mail["content"]


def test_an_unknown_notify_url_is_refused_before_the_job_runs(tmp_path):
    (tmp_path / "pacs").mkdir()
    (tmp_path / "wl.csv").write_text("AccessionNumber\nA1\n")
    out = diana("--notify", "nosuchservice://token@x", "collect", "wl.csv", "./pacs", "./out", "--job-dir", "job",
                cwd=tmp_path)
    assert out.returncode == 1 and "Apprise cannot use this nosuchservice:// URL" in out.stderr, out.stderr
    assert "token" not in out.stderr and not (tmp_path / "job").exists()  # refused up front, secret not echoed


def test_without_the_apprise_extra_a_non_http_url_names_the_extra(monkeypatch):
    from diana_core.cli.notify import Notifier
    from diana_core.errors import ConfigError

    monkeypatch.setitem(sys.modules, "apprise", None)  # as if the extra were not installed
    with pytest.raises(ConfigError, match=r"mailto:// URLs need Apprise: pip install 'diana-dicom\[apprise\]'"):
        Notifier(url="mailto://user:pw@smtp.example.org")
    assert Notifier(url="https://hooks.example.org/x")._apprise is None  # a webhook needs no Apprise (not sent here)
