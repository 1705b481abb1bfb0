"""A local stand-in for a Montage server, for tests only (Montage is a commercial product and cannot run here).

``FakeMontage`` is a stdlib ``http.server`` in a thread on a free loopback port. It implements the routes and JSON
shapes ``MontageGateway`` uses: ``index/``, ``index/{index}/search/`` (q, start_date, end_date, modality, exam_type
filters; offset/limit paging; ``meta.total_count`` + ``objects``), ``cptcode/{id}/`` and ``anatomy/{id}/`` (with
``parent``), behind HTTP basic auth (401 on wrong credentials). It counts requests per route so tests can prove
caching. Use: ``fake = FakeMontage().start()`` ... ``fake.stop()``; ``fake.service_desc()`` is a service entry.
"""

from __future__ import annotations

import base64
import collections
import json
import secrets
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API = "/api/v1/"

ANATOMY = {  # id -> (label, parent id)
    "1": ("Abdomen", None), "2": ("Liver", "1"), "3": ("Hepatic segment", "2"),
    "10": ("Head", None), "11": ("Brain", "10"), "20": ("Chest", None),
}
CPTS = {  # Montage CPT id -> (CPT code, anatomy ids)
    "501": ("74177", ["3"]), "502": ("70551", ["11"]), "503": ("71046", ["20"]), "504": ("74176", ["2", "20"]),
}
_EXAMS = [  # (modality, code, description, cpt ids)
    ("CT", "CTABDPEL", "CT ABDOMEN PELVIS W CONTRAST", ["501"]),
    ("MR", "MRBRAIN", "MR BRAIN WO CONTRAST", ["502"]),
    ("CR", "XRCHEST", "XR CHEST 2 VIEWS", ["503"]),
    ("CT", "CTABDCH", "CT ABDOMEN AND CHEST", ["504", "503"]),
]


def make_reports(n: int) -> list[dict[str, Any]]:
    """``n`` synthetic Montage search results (no real patients), dated over January 2020."""
    out = []
    for i in range(n):
        modality, code, desc, cpts = _EXAMS[i % len(_EXAMS)]
        day = f"2020-01-{1 + i % 28:02d}"
        out.append({
            "accession_number": f"ACC{i:05d}",
            "patient_mrn": f"MRN{i % 50:04d}",
            "patient_sex": "MF"[i % 2],
            "patient_age": 20 + i % 60,
            "organization": {"label": "Mock Hospital"},
            "exam_type": {"description": desc, "code": code, "modality": {"label": modality},
                          "cpts": [f"{API}cptcode/{c}/" for c in cpts]},
            "events": [{"provider": {"name": "Referrer^Dr"}, "date": f"{day}T08:00:00"},
                       {"provider": None, "date": f"{day}T09:30:00"}],
            "text": f"<p>EXAM: {desc}\r</p><p>FINDINGS: normal study {i}.</p><p>Impression: none</p>",
        })
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeMontage:
    """The fake server: ``start()``/``stop()``, ``service_desc()``, ``requests`` (route -> count)."""

    def __init__(self, reports: list[dict[str, Any]] | None = None, user: str = "tester",
                 password: str | None = None, certfile: str | None = None, keyfile: str | None = None) -> None:
        self.certfile, self.keyfile = certfile, keyfile  # serve HTTPS with this certificate when given
        self.reports = make_reports(25) if reports is None else reports
        self.user = user
        self.password = password or secrets.token_urlsafe(12)
        self.port = free_port()
        self.requests: collections.Counter[str] = collections.Counter()
        self.broken: set[str] = set()  # route ids answering 404 (e.g. "cptcode/503")
        self.flaky: collections.Counter[str] = collections.Counter()  # route -> how many 503s to answer first
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def service_desc(self) -> dict[str, Any]:
        return {"ctype": "Montage", "host": "127.0.0.1", "port": self.port,
                "protocol": "https" if self.certfile else "http",
                "user": self.user, "password": self.password, "page_size": 10}

    def start(self) -> FakeMontage:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        if self.certfile:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.certfile, self.keyfile)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    # --- routes --------------------------------------------------------------------------------------
    def search(self, params: dict[str, str]) -> dict[str, Any]:
        hits = self.reports
        if params.get("q"):
            hits = [r for r in hits if params["q"].lower() in (r["text"] + r["accession_number"]).lower()]
        if params.get("modality"):
            hits = [r for r in hits if r["exam_type"]["modality"]["label"] == params["modality"]]
        if params.get("exam_type"):
            hits = [r for r in hits if r["exam_type"]["code"] == params["exam_type"]]
        if params.get("start_date"):
            hits = [r for r in hits if r["events"][-1]["date"][:10] >= params["start_date"]]
        if params.get("end_date"):
            hits = [r for r in hits if r["events"][-1]["date"][:10] <= params["end_date"]]
        offset, limit = int(params.get("offset", 0)), int(params.get("limit", 20))
        return {"meta": {"total_count": len(hits), "offset": offset, "limit": limit},
                "objects": hits[offset:offset + limit]}

    def route(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        parts = [p for p in path[len(API):].split("/") if p] if path.startswith(API) else []
        key = "/".join(parts[:2])
        if key in self.broken:
            return 404, {"error": "not found"}
        if parts == ["index"]:
            return 200, {"objects": [{"name": "rad"}]}
        if len(parts) == 3 and parts[0] == "index" and parts[2] == "search":
            if params.get("format") != "json":
                return 400, {"error": "format=json required"}
            return (200, self.search(params)) if parts[1] == "rad" else (404, {"error": "no such index"})
        if len(parts) == 2 and parts[0] == "cptcode" and parts[1] in CPTS:
            code, anatomies = CPTS[parts[1]]
            return 200, {"id": int(parts[1]), "code": code, "anatomies": [f"{API}anatomy/{a}/" for a in anatomies]}
        if len(parts) == 2 and parts[0] == "anatomy" and parts[1] in ANATOMY:
            label, parent = ANATOMY[parts[1]]
            return 200, {"id": int(parts[1]), "label": label, "parent": f"{API}anatomy/{parent}/" if parent else None}
        return 404, {"error": "not found"}


def _handler(fake: FakeMontage) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{fake.user}:{fake.password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            url = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            route = "/".join(p for p in url.path[len(API):].split("/") if p)
            fake.requests[route] += 1
            if fake.flaky[route] > 0:
                fake.flaky[route] -= 1
                status, body = 503, {"error": "busy"}
            elif self.headers.get("Authorization") != expected:
                status, body = 401, {"error": "unauthorized"}
            else:
                status, body = fake.route(url.path, params)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    return Handler

