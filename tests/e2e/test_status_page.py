"""``diana watch --status-port``: the status page in a real headless Chromium during a running watch, /metrics in
Prometheus format, /healthz, and the token rule for non-loopback binds."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image
from pydicom.data import get_testdata_file

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def get(url: str, headers: dict | None = None) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")
    except urllib.error.HTTPError as err:
        return err.code, err.read(), ""
    except OSError:
        return 0, b"", ""


@pytest.fixture
def watch(tmp_path):
    """A real ``diana watch`` process routing ./inbox into ./out with the status server on a free port."""
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    services = tmp_path / "services.yml"
    services.write_text(f"inbox: {{ctype: ObservableDcmDir, path: {inbox}, settle_interval: 0.05, "
                        f"polling_interval: 0.05}}\n")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIANA_") or k == "DIANA_PSEUDONYM_KEY"}
    log = (tmp_path / "watch.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "diana_core", "-s", str(services), "watch", "-r", "put_item",
                             "inbox", str(out), "--interval", "0.1", "--status-port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: get(base + "/healthz")[0] == 200, "the status server")
        yield base, inbox, out
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def drop(inbox: Path, n: int, start: int = 0) -> None:
    src = get_testdata_file("CT_small.dcm")
    for i in range(start, start + n):
        tmp = inbox.parent / f".x{i}.tmp"
        shutil.copyfile(src, tmp)
        tmp.rename(inbox / f"x{i}.dcm")


def status(base: str) -> dict:
    return json.loads(get(base + "/status.json")[1])


def test_status_page_in_chromium_sees_counts_change_and_draws_the_chart(watch, tmp_path):
    from playwright.sync_api import sync_playwright

    base, inbox, _ = watch
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 700})
            page.goto(base + "/")
            page.wait_for_function("document.getElementById('handled').textContent === '0'", timeout=30000)
            assert page.locator("svg.chart").count() == 1  # the empty chart says "no events yet"

            drop(inbox, 3)
            page.wait_for_function("Number(document.getElementById('handled').textContent) >= 3", timeout=60000)
            page.wait_for_function("document.querySelectorAll('svg.chart rect.bar').length >= 1", timeout=30000)
            assert int(page.text_content("#seen")) >= 3 and page.text_content("#dead") == "0"
            shot = page.locator("#chart").screenshot()
            (tmp_path / "chart.png").write_bytes(shot)
        finally:
            browser.close()
    image = Image.open(io.BytesIO(shot)).convert("RGB")
    colors = image.getcolors(maxcolors=image.width * image.height) or []
    bar_blue = sum(n for n, (r, g, b) in colors if abs(r - 0x2F) < 20 and abs(g - 0x7E) < 20 and abs(b - 0xD8) < 20)
    assert image.width >= 700 and bar_blue > 200, f"no bars drawn in the chart ({bar_blue} blue pixels)"


def test_metrics_and_healthz_follow_the_running_watch(watch):
    base, inbox, out = watch
    code, body, ctype = get(base + "/metrics")
    route = 'route="put_item:inbox->' + str(out) + '"'
    assert code == 200 and ctype.startswith("text/plain")
    assert f"diana_events_handled_total{{{route}}} 0.0".encode() in body, body.decode()
    drop(inbox, 2)
    wait_for(lambda: status(base)["handled"] >= 2, "two handled events")
    text = get(base + "/metrics")[1].decode()
    assert "diana_events_seen_total 2.0" in text and f"diana_events_handled_total{{{route}}} 2.0" in text
    assert 'diana_handling_seconds_bucket{le="+Inf"} 2.0' in text and "diana_retry_queue_depth 0.0" in text
    moved = float(next(x.split()[1] for x in text.splitlines() if x.startswith(f"diana_moved_bytes_total{{{route}}}")))
    assert moved == 2 * Path(get_testdata_file("CT_small.dcm")).stat().st_size
    health = json.loads(get(base + "/healthz")[1])
    assert health["status"] == "ok" and health["last_tick_age_seconds"] < 10
    page = get(base + "/status.json")[1].decode()
    assert "CT_small" not in page and "x0.dcm" not in page  # no file names (they can carry PHI)


def test_a_token_guards_the_server_and_is_required_off_loopback(tmp_path):
    from diana_core.cli.status_server import StatusServer, WatchView
    from diana_core.errors import ConfigError
    from diana_core.metrics import Recorder
    from diana_core.usecases.watcher import Watcher

    watcher = Watcher()
    with pytest.raises(ConfigError, match="--status-token"):
        StatusServer(WatchView(watcher, Recorder()), host="0.0.0.0")
    server = StatusServer(WatchView(watcher, Recorder()), host="127.0.0.1", port=0, token="s3cret").start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert get(base + "/metrics")[0] == 401 and get(base + "/status.json?token=wrong")[0] == 401
        assert get(base + "/metrics", {"Authorization": "Bearer s3cret"})[0] == 200
        basic = base64.b64encode(b"anyone:s3cret").decode()
        assert get(base + "/status.json", {"Authorization": f"Basic {basic}"})[0] == 200
        assert get(base + "/?token=s3cret")[0] == 200
        assert get(base + "/healthz")[0] == 503  # no tick yet: a probe sees it stalled (and needs no token)
    finally:
        server.stop()
