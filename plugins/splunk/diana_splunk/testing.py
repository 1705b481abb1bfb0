"""A local stand-in for a Splunk server, for tests only: Splunk is a commercial product and cannot run here.

``FakeSplunk`` is a stdlib ``http.server`` in a thread on a free loopback port (HTTP, or HTTPS with a certificate
you give it) speaking the documented REST shapes ``SplunkGateway`` uses:

- ``POST /services/collector/event`` (HEC): ``Authorization: Splunk <token>``; body = JSON event objects back to
  back; answers ``{"text", "code"}`` with Splunk's HEC codes (2 token required, 3 invalid authorization, 4 invalid
  token, 6 invalid data format, 7 incorrect index, 9 server busy, 12 event field is required).
- ``POST /services/search/jobs`` -> ``{"sid"}``; ``GET /services/search/jobs/{sid}`` -> ``entry[0].content``
  (``isDone`` after ``polls_to_finish`` polls, ``dispatchState``, ``resultCount``); ``GET
  /services/search/jobs/{sid}/results?count=&offset=`` -> ``{"results": [{"_raw": ...}]}``, at most
  ``max_page`` rows per page (like Splunk's maxresultrows). The search language understood is the subset Diana
  writes: ``search index=NAME field="value" ...`` (equality, AND); time modifiers are accepted and ignored.
- ``GET /services/server/info`` -> ``entry[0].content`` with a version.
Management calls need HTTP basic auth (401 otherwise). Requests are counted per route.
"""

from __future__ import annotations

import base64
import collections
import json
import re
import secrets
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

_TERM = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def parse_spl(spl: str) -> dict[str, str] | None:
    """``search index=x a="b"`` -> {"index": "x", "a": "b"}; None for anything else."""
    text = spl.strip()
    if not text.startswith("search "):
        return None
    terms = {}
    for key, value in _TERM.findall(text[len("search "):]):
        if value.startswith('"'):
            value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        terms[key] = value
    return terms


class FakeSplunk:
    """The fake server: ``start()``/``stop()``, ``service_desc()``, ``events`` (what HEC accepted), ``requests``."""

    def __init__(self, indexes: tuple[str, ...] = ("dicom", "main", "dose"), user: str = "admin",
                 password: str | None = None, token: str | None = None, max_page: int = 3, polls_to_finish: int = 2,
                 certfile: str | None = None, keyfile: str | None = None) -> None:
        self.indexes = set(indexes)
        self.user = user
        self.password = password or secrets.token_urlsafe(12)
        self.token = token or secrets.token_hex(16)
        self.max_page = max_page
        self.polls_to_finish = polls_to_finish
        self.certfile, self.keyfile = certfile, keyfile
        self.busy = False
        self.port = free_port()
        self.events: list[dict[str, Any]] = []
        self.hec_posts: list[int] = []  # events per accepted HEC request
        self.pages: list[tuple[int, int]] = []  # (offset, rows) per results page served
        self.requests: collections.Counter[str] = collections.Counter()
        self._jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.certfile else "http"

    def service_desc(self, **extra: Any) -> dict[str, Any]:
        """A service-file entry for this server (management and HEC on the same port)."""
        desc = {"ctype": "Splunk", "host": "127.0.0.1", "port": self.port, "hec_port": self.port,
                "protocol": self.scheme, "hec_protocol": self.scheme, "user": self.user, "password": self.password,
                "hec_token": self.token, "poll_interval": 0.01}
        desc.update(extra)
        return desc

    # --- server side ------------------------------------------------------------------------------------
    def _hec(self, headers: Any, body: bytes) -> tuple[int, dict[str, Any]]:
        auth = headers.get("Authorization")
        if not auth:
            return 401, {"text": "Token is required", "code": 2}
        scheme, _, token = auth.partition(" ")
        if scheme != "Splunk" or not token:
            return 401, {"text": "Invalid authorization", "code": 3}
        if token != self.token:
            return 403, {"text": "Invalid token", "code": 4}
        if self.busy:
            return 503, {"text": "Server is busy", "code": 9}
        decoder, text, pos = json.JSONDecoder(), body.decode("utf-8", "replace"), 0
        events: list[Any] = []
        while pos < len(text):
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except ValueError:
                return 400, {"text": "Invalid data format", "code": 6, "invalid-event-number": len(events)}
            events.append(obj)
        for n, event in enumerate(events):
            if not isinstance(event, dict) or "event" not in event:
                return 400, {"text": "Event field is required", "code": 12, "invalid-event-number": n}
            if event.get("index", "main") not in self.indexes:
                return 400, {"text": "Incorrect index", "code": 7, "invalid-event-number": n}
        if not events:
            return 400, {"text": "No data", "code": 5}
        with self._lock:
            self.events.extend(events)
            self.hec_posts.append(len(events))
        return 200, {"text": "Success", "code": 0}

    def _authorized(self, headers: Any) -> bool:
        auth = headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(auth[6:]).decode("utf-8", "replace").partition(":")
        return secrets.compare_digest(user, self.user) and secrets.compare_digest(password, self.password)

    def _create_job(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        terms = parse_spl((form.get("search") or [""])[0])
        if terms is None:
            return 400, {"messages": [{"type": "FATAL", "text": "Error in 'SearchParser': Unknown search command"}]}
        index = terms.pop("index", "main")
        with self._lock:
            rows = [e for e in self.events if e.get("index", "main") == index and isinstance(e.get("event"), dict)
                    and all(str(e["event"].get(k)) == v for k, v in terms.items())]
            sid = f"{len(self._jobs) + 1}.{secrets.token_hex(4)}"
            self._jobs[sid] = {"rows": rows, "polls": 0}
        return 201, {"sid": sid}

    def _job(self, sid: str) -> tuple[int, dict[str, Any]]:
        job = self._jobs.get(sid)
        if job is None:
            return 404, {"messages": [{"type": "FATAL", "text": f"Unknown sid {sid}"}]}
        job["polls"] += 1
        done = job["polls"] >= self.polls_to_finish
        return 200, {"entry": [{"content": {"isDone": done, "dispatchState": "DONE" if done else "RUNNING",
                                            "resultCount": len(job["rows"]) if done else 0}}]}

    def _results(self, sid: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        job = self._jobs.get(sid)
        if job is None:
            return 404, {"messages": [{"type": "FATAL", "text": f"Unknown sid {sid}"}]}
        count = min(int((query.get("count") or ["100"])[0]) or self.max_page, self.max_page)
        offset = int((query.get("offset") or ["0"])[0])
        page = job["rows"][offset:offset + count]
        self.pages.append((offset, len(page)))
        return 200, {"results": [{"_raw": json.dumps(e["event"]), "_time": e.get("time"), "index": e.get("index")}
                                 for e in page]}

    def start(self) -> FakeSplunk:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(self, status: int, data: dict[str, Any]) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                fake.requests[f"POST {url.path}"] += 1
                body = self._body()
                if url.path == "/services/collector/event":
                    self._send(*fake._hec(self.headers, body))
                elif not fake._authorized(self.headers):
                    self._send(401, {"messages": [{"type": "WARN", "text": "call not properly authenticated"}]})
                elif url.path == "/services/search/jobs":
                    self._send(*fake._create_job(parse_qs(body.decode())))
                else:
                    self._send(404, {"messages": [{"type": "ERROR", "text": "Not Found"}]})

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                url = urlsplit(self.path)
                parts = url.path.strip("/").split("/")
                fake.requests[f"GET {'/'.join(parts[:3])}"] += 1
                if not fake._authorized(self.headers):
                    self._send(401, {"messages": [{"type": "WARN", "text": "call not properly authenticated"}]})
                elif url.path == "/services/server/info":
                    self._send(200, {"entry": [{"content": {"version": "9.1.0", "serverName": "fake-splunk"}}]})
                elif parts[:3] == ["services", "search", "jobs"] and len(parts) == 4:
                    self._send(*fake._job(parts[3]))
                elif parts[:3] == ["services", "search", "jobs"] and len(parts) == 5 and parts[4] == "results":
                    self._send(*fake._results(parts[3], parse_qs(url.query)))
                else:
                    self._send(404, {"messages": [{"type": "ERROR", "text": "Not Found"}]})

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if self.certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.certfile, self.keyfile)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeSplunk:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_self_signed(folder: str) -> tuple[str, str]:
    """A certificate for 127.0.0.1 (and its key) made with the openssl command; returns (certfile, keyfile).
    The certificate is its own CA, so it is also the ``ca_path`` clients give."""
    import os
    import subprocess

    cert, key = os.path.join(folder, "splunk.pem"), os.path.join(folder, "splunk.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key
