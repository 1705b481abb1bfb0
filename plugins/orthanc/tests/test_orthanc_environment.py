"""The Orthanc gateway reads the environment (proxies, $NO_PROXY) once, not per request, and still honours it.

The proxy here is a small forwarding HTTP proxy (http.server + http.client) in front of the real Orthanc: it only
relays requests, so what arrives is counted on Orthanc itself.
"""

from __future__ import annotations

import http.client
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock

import pytest

from diana_orthanc import Orthanc


class _Forward(BaseHTTPRequestHandler):
    seen: list[str]

    def _relay(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        url = urllib.parse.urlsplit(self.path)  # a proxy gets the absolute URL
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("proxy-connection", "connection")}
        conn.request(self.command, url.path + (f"?{url.query}" if url.query else ""), body=body or None,
                     headers=headers)
        answer = conn.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = _relay

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Forward", (_Forward,), {"seen": seen}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def _endpoint(server) -> Orthanc:
    return Orthanc(host=server.host, port=server.http_port, user=server.user, password=server.password)


def test_uploads_go_through_the_environment_proxy_read_once(clean_orthancs, dicom_testfiles, proxy, monkeypatch):
    url, seen = proxy
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", url)
    server = clean_orthancs.local
    endpoint = _endpoint(server)
    endpoint.gateway  # built here: the environment is read now
    import urllib.request

    with mock.patch.object(urllib.request, "getproxies_environment",
                           wraps=urllib.request.getproxies_environment) as scans:
        result = endpoint.put_files(dicom_testfiles, workers=2)
    assert result.done == len(dicom_testfiles) and not result.failed
    assert scans.call_count == 0  # requests used to scan every variable twice per upload
    assert sum(s.startswith("POST http://127.0.0.1") for s in seen) == len(dicom_testfiles)
    assert server._session().get(f"{server.url}/statistics").json()["CountInstances"] == len(dicom_testfiles)


def test_no_proxy_still_bypasses_the_proxy(clean_orthancs, dicom_testfiles, proxy, monkeypatch):
    url, seen = proxy
    monkeypatch.setenv("HTTP_PROXY", url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    server = clean_orthancs.local
    result = _endpoint(server).put_files([str(Path(p)) for p in dicom_testfiles[:3]], workers=1)
    assert result.done == 3 and not result.failed
    assert seen == []
    assert server._session().get(f"{server.url}/statistics").json()["CountInstances"] == 3


# --- uploads sent as copies of one prepared request (#27: Session.request re-prepared everything per upload) -------
class _CookieSetter(_Forward):
    """The forwarding proxy, setting a cookie on every answer (as a load balancer's sticky session does) and
    noting which requests carried it."""

    cookies: list[str | None]

    def _relay(self) -> None:
        self.cookies.append(self.headers.get("Cookie"))
        super()._relay()

    def end_headers(self) -> None:
        self.send_header("Set-Cookie", "lb=node2; Path=/")
        super().end_headers()

    do_GET = do_POST = _relay


def test_uploads_skip_session_request_and_still_arrive(clean_orthancs, dicom_testfiles):
    import requests

    server = clean_orthancs.local
    endpoint = _endpoint(server)
    with mock.patch.object(requests.Session, "request", autospec=True,
                           side_effect=requests.Session.request) as full:
        result = endpoint.put_files(dicom_testfiles, workers=2)
    assert result.done == len(dicom_testfiles) and not result.failed
    assert full.call_count == 0  # every upload a copy of the one prepared request
    assert server._session().get(f"{server.url}/statistics").json()["CountInstances"] == len(dicom_testfiles)
    assert len(endpoint.gateway._prepared) == 1


def test_a_cookie_the_server_sets_goes_with_every_later_upload(clean_orthancs, dicom_testfiles, monkeypatch):
    seen: list[str] = []
    cookies: list[str | None] = []
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), type("Sticky", (_CookieSetter,), {"seen": seen, "cookies": cookies}))
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        for name in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        server = clean_orthancs.local
        files = dicom_testfiles[:4]
        result = _endpoint(server).put_files(files, workers=1)
    finally:
        proxy.shutdown()
        proxy.server_close()
    monkeypatch.delenv("HTTP_PROXY")
    assert result.done == len(files) and not result.failed
    assert cookies[0] is None and cookies[1:] == ["lb=node2"] * (len(files) - 1)
    assert server._session().get(f"{server.url}/statistics").json()["CountInstances"] == len(files)
