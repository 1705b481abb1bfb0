"""A read-only status web server: for a running ``diana watch`` (``--status-port``) or for job folders
(``diana serve``). ``/`` a live page (counts, rates, retry queue, dead letters, last errors, throughput chart),
``/status.json``, ``/metrics`` (Prometheus text format through ``prometheus_client``; OpenMetrics when the Accept
header asks for it), ``/healthz``.

Binds to 127.0.0.1 by default. Bound elsewhere it requires a token (``--status-token`` / ``DIANA_STATUS_TOKEN``),
given as ``Authorization: Bearer TOKEN``, as the basic-auth password, or as ``?token=`` (the page passes it on).
No PHI: counters, rates and log messages at WARNING+ (which by house rule carry no PHI) only.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import logging
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from diana_core.errors import ConfigError
from diana_core.metrics import BUCKETS, Recorder
from diana_core.serialize import iso_time

COUNTERS = ("events_seen", "events_handled", "events_failed", "events_dead_lettered", "studies_collected",
            "moved_bytes")
ROUTED = frozenset(COUNTERS[1:])
"""Counters a route makes: exported per route (label ``route``, the trigger's name; 0 for routes without any yet)."""
HELP = {
    "events_seen": "Events seen from the watched sources", "events_handled": "Events handled by a route",
    "events_failed": "Failed handling attempts", "events_dead_lettered": "Events written to the dead-letter file",
    "studies_collected": "Studies moved by a route", "moved_bytes": "Bytes of DICOM moved by routes",
    "retry_queue_depth": "Events waiting for a retry", "handling_seconds": "Time to handle one event",
}


STATUS_FIELDS = {
    "uptime_seconds": "Seconds since the watcher started.",
    "seen": "Events seen from the watched sources.", "handled": "Events handled (by every route that took them).",
    "failed": "Failed handling attempts (each retry counts).", "dead": "Events written to the dead-letter file.",
    "retry_queue": "Events waiting for a retry.", "source_errors": "Failed polls of a source (it is polled again).",
    "handled_per_minute": "Events handled per minute, over the last minutes.",
    "failed_per_minute": "Failed attempts per minute, over the last minutes.",
    "mean_handling_seconds": "Mean time to handle one event (null before the first).",
    "counters": "The /metrics counters by name, without the diana_ prefix.",
    "deadletter_file": "Where dead letters are written (replay them with watch --replay).",
    "last_errors": "The last WARNING+ log lines (time, level, logger, message; file names as keyed hashes).",
    "throughput": "[bucket start (ISO 8601), events handled] pairs for the chart.",
    "bucket_seconds": "Width of a throughput bucket.", "chart_svg": "The throughput chart as SVG.",
    "routes": "Per routing rule: matched, delivered, skipped, retried, dead (watch -R).",
    "unrouted": "Events no routing rule took (null without a routes file).",
}
"""What each key of ``/status.json`` of ``diana watch --status-port`` means (the documentation is generated from it)."""


class LastErrors(logging.Handler):
    """Keeps the last WARNING+ log records (time, level, logger, message) for the page."""

    def __init__(self, keep: int = 10) -> None:
        super().__init__(logging.WARNING)
        self.records: deque[dict[str, str]] = deque(maxlen=keep)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.appendleft({"time": iso_time(record.created),
                                 "level": record.levelname, "logger": record.name,
                                 "message": record.getMessage()[:300]})


class WatchView:
    """What the server shows for a running watcher: its stats, a ``Recorder``, the last WARNING+ log records."""

    page = "watch"

    def __init__(self, watcher: Any, recorder: Recorder, deadletter: str | None = None, router: Any = None) -> None:
        self.watcher, self.recorder, self.deadletter = watcher, recorder, deadletter
        self.router = router  # routing rules (diana_core.usecases.routing.Router): per-rule counts
        self.errors = LastErrors()

    def open(self) -> None:
        logging.getLogger().addHandler(self.errors)  # every logger propagates to the root

    def close(self) -> None:
        logging.getLogger().removeHandler(self.errors)

    def status(self) -> dict[str, Any]:
        from diana_core.cli.charts import svg_bars

        stats, rec = self.watcher.stats, self.recorder
        counters = {name: int(rec.counters.get(name, 0)) for name in COUNTERS}
        series = rec.series("events_handled")
        chart = [(iso_time(t), v) for t, v in series]
        hist = rec.histograms.get("handling_seconds")
        return {
            "uptime_seconds": round(time.time() - rec.started, 1),
            "seen": stats.seen, "handled": stats.handled, "failed": stats.failed, "dead": stats.dead,
            "retry_queue": stats.pending_retries, "source_errors": stats.source_errors,
            "handled_per_minute": round(rec.rate_per_minute("events_handled"), 1),
            "failed_per_minute": round(rec.rate_per_minute("events_failed"), 1),
            "mean_handling_seconds": round(hist.total / hist.count, 4) if hist and hist.count else None,
            "counters": counters, "deadletter_file": self.deadletter,
            "last_errors": list(self.errors.records),
            "throughput": [[t, v] for t, v in chart], "bucket_seconds": rec.bucket,
            "chart_svg": svg_bars(chart, f"events handled per {rec.bucket:g} s", unit="events"),
            "routes": self.router.table() if self.router is not None else [],
            "unrouted": self.router.unrouted if self.router is not None else None,
        }

    def healthy(self) -> tuple[bool, dict[str, Any]]:
        """200 "ok"; 200 "degraded: destination X down" while the loop runs but a destination refuses (retries
        are scheduled: a liveness probe must not restart the daemon); 503 "stalled" when the loop stopped ticking."""
        last = self.watcher.last_tick
        age = None if last is None else self.watcher.clock() - last
        limit = max(10.0, 5 * float(self.watcher.action_interval))
        ok = age is not None and age <= limit and not self.watcher.stopping
        down = self.watcher.down_destinations() if ok else {}
        status = "stalled" if not ok else f"degraded: destination {', '.join(sorted(down))} down" if down else "ok"
        health: dict[str, Any] = {"status": status, "last_tick_age_seconds": None if age is None else round(age, 2)}
        if down:
            health["down"] = {name: error[:200] for name, error in down.items()}
        return ok, health

    def metric_families(self) -> Any:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        rec = self.recorder
        routes = sorted({t.name for t in self.watcher.triggers} | {route for _, route in rec.route_counters})
        for name in COUNTERS:
            if name not in ROUTED:
                yield CounterMetricFamily(f"diana_{name}", HELP[name], value=rec.counters.get(name, 0.0))
                continue
            family = CounterMetricFamily(f"diana_{name}", HELP[name], labels=["route"])
            for route in routes:
                family.add_metric([route], rec.route_counters.get((name, route), 0.0))
            yield family
        yield GaugeMetricFamily("diana_retry_queue_depth", HELP["retry_queue_depth"],
                                value=rec.gauges.get("retry_queue_depth", 0.0))
        if self.router is not None:
            yield from _route_families(self.router)
        hist = rec.histograms.get("handling_seconds")
        buckets = [(f"{b:g}", float(n)) for b, n in zip(BUCKETS, hist.buckets if hist else [0] * len(BUCKETS))]
        buckets.append(("+Inf", float(hist.count if hist else 0)))
        yield HistogramMetricFamily("diana_handling_seconds", HELP["handling_seconds"], buckets=buckets,
                                    sum_value=hist.total if hist else 0.0)


ROUTE_COUNTERS = {"matched": "Events a routing rule took", "delivered": "Deliveries done by a routing rule",
                  "skipped": "Deliveries skipped as already done (ledger)", "retried": "Retries scheduled by a rule",
                  "dead": "Deliveries of a rule written to the dead-letter file"}


def _route_families(router: Any) -> Any:
    from prometheus_client.core import CounterMetricFamily

    rows = router.table()
    for key, text in ROUTE_COUNTERS.items():
        family = CounterMetricFamily(f"diana_route_{key}", text, labels=["route"])
        for row in rows:
            family.add_metric([row["route"]], float(row[key]))
        yield family
    yield CounterMetricFamily("diana_events_unrouted", "Events no routing rule took", value=float(router.unrouted))


class StatusServer:
    """Serves a view (``WatchView``, ``JobsView``) over HTTP in a daemon thread; ``start()`` / ``stop()``."""

    def __init__(self, view: Any, host: str = "127.0.0.1", port: int = 0, token: str | None = None) -> None:
        if not _is_loopback(host) and not token:
            raise ConfigError(f"--status-host {host} is reachable from other machines: give --status-token "
                              "(or DIANA_STATUS_TOKEN) so the status page and /metrics need it")
        self.view, self.token = view, token
        self._server = ThreadingHTTPServer((host, port), _handler(self))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> StatusServer:
        self.view.open()
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="diana-status", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.view.close()

    def metrics(self, accept: str = "") -> tuple[bytes, str]:
        """The view's metrics in Prometheus text format, or OpenMetrics when ``accept`` (the Accept header) asks."""
        from prometheus_client import CollectorRegistry
        from prometheus_client.exposition import choose_encoder

        view = self.view

        class ViewCollector:
            def collect(self) -> Any:
                yield from view.metric_families()

        registry = CollectorRegistry()
        registry.register(ViewCollector())  # type: ignore[arg-type]
        encode, content_type = choose_encoder(accept)
        return encode(registry), content_type

    def authorized(self, headers: Any, query: dict[str, list[str]]) -> bool:
        if not self.token:
            return True
        given = (query.get("token") or [""])[0]
        auth = headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[7:]
        elif auth.startswith("Basic "):
            try:
                given = base64.b64decode(auth[6:]).decode("utf-8").partition(":")[2]
            except (ValueError, UnicodeDecodeError):
                return False
        return hmac.compare_digest(given.encode("utf-8"), self.token.encode("utf-8"))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _handler(server: StatusServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "diana-status"

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            query = parse_qs(url.query)
            if url.path == "/healthz":
                ok, health = server.view.healthy()
                return self._send(200 if ok else 503, json.dumps(health).encode(), "application/json")
            if not server.authorized(self.headers, query):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="diana"')
                self.end_headers()
                return None
            if url.path == "/metrics":
                body, ctype = server.metrics(self.headers.get("Accept", ""))
                return self._send(200, body, ctype)
            if url.path == "/status.json":
                return self._send(200, json.dumps(server.view.status()).encode(), "application/json")
            if url.path in ("/", "/index.html"):
                from diana_core.cli import status_page

                page = getattr(status_page, server.view.page.upper())
                return self._send(200, page.encode("utf-8"), "text/html; charset=utf-8")
            return self._send(404, b"not found\n", "text/plain")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
            pass  # access logs would drown the daemon's own lines

    return Handler
