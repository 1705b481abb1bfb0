"""A deliberately broken sample endpoint and its kit subclasses: the kit must fail it with readable messages.

Not collected by itself (no ``test_`` prefix); ``test_kit.py`` copies it into a temporary folder and runs pytest on it.
Its defects: ``get`` answers None when absent, unknown keywords pass, a double put stores twice, ``delete`` forgets to
remove; the HTTP one swallows every failure as "absent", takes any 2xx as stored and reads whole bodies.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from diana_core import Dixel, Endpoint
from diana_core.testing.conformance import EndpointContract, EndpointFaults


class BrokenStore(Endpoint):
    """Keeps a list, not a set; every mistake the contract checks for."""

    def __init__(self) -> None:
        self.name, self.rows = "broken-store", []

    def put(self, item: Dixel, **kwargs: Any) -> Any:
        self.rows.append(item)
        return item.tag("SOPInstanceUID")

    def get(self, item: Any, **kwargs: Any) -> Any:
        return next((r for r in self.rows if r.tag("SOPInstanceUID") == item.tag("SOPInstanceUID")), None)

    def exists(self, item: Any, **kwargs: Any) -> bool:
        return self.get(item) is not None

    def find(self, query: Any, **kwargs: Any) -> list[Dixel]:
        return [r for r in self.rows if all(r.tag(k) == v for k, v in query.items())]

    def delete(self, item: Any, **kwargs: Any) -> bool:
        return True


class BrokenHttp(Endpoint):
    """An HTTP endpoint that swallows failures."""

    def __init__(self, host: str, port: int) -> None:
        self.name, self.base = "broken-http", f"http://{host}:{port}"

    def exists(self, item: Any, **kwargs: Any) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base}/items/{item.tag('SOPInstanceUID')}", timeout=1) as resp:
                return bool(resp.read())
        except Exception:  # noqa: BLE001 - the defect under test
            return False

    def put(self, item: Dixel, **kwargs: Any) -> Any:
        request = urllib.request.Request(f"{self.base}/items", data=b"x", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=1) as resp:
                return resp.status
        except Exception:  # noqa: BLE001 - the defect under test
            return "queued"


class _Ok(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        body = json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def items() -> list[Dixel]:
    return [Dixel(tags={"PatientID": "P", "StudyInstanceUID": "1.2", "SeriesInstanceUID": "1.2.3",
                        "SOPInstanceUID": f"1.2.3.{i}"}, level="instances") for i in range(2)]


@pytest.fixture
def endpoint() -> BrokenStore:
    return BrokenStore()


@pytest.fixture
def upstream() -> Iterator[tuple[str, int]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1", server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def endpoint_at() -> Callable[[str, int], BrokenHttp]:
    return BrokenHttp


class TestBrokenStoreContract(EndpointContract):
    levels = ("instances",)
    level_keyword = None
    not_applicable = {"study_exists_means_complete": "a sample: it keeps no studies"}


class TestBrokenHttpFaults(EndpointFaults):
    faults = ("refused", "stall", "html_login", "http_401", "huge_body")
    not_applicable = {"fault:huge_body.write": "a sample: declared to show a declared case is not collected"}
