"""contrib/monitoring against what /metrics really serves: every dashboard and alert query names metrics (and
labels) that ``diana watch --status-port`` or ``diana serve`` expose; per-route counts carry ``route``, job gauges
``diana_job`` (never Prometheus' own ``job``); OpenMetrics when the scraper asks for it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from diana_core.cli.serve import JobsView
from diana_core.cli.status_server import StatusServer, WatchView
from diana_core.metrics import Recorder
from diana_core.ports import Event, EventType
from diana_core.usecases.journal import DONE, FAILED, Journal
from diana_core.usecases.watcher import Trigger, Watcher
from tests.e2e.test_status_page import get

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "contrib" / "monitoring"
TARGET_LABELS = {"job", "instance"}  # set by Prometheus on every scraped series


class Folder:
    name = "inbox"

    def changes(self):
        return []


def scrape(view, accept: str = "") -> tuple[str, str]:
    server = StatusServer(view, port=0).start()
    try:
        code, body, ctype = get(f"http://127.0.0.1:{server.port}/metrics", {"Accept": accept} if accept else None)
        assert code == 200
        return body.decode(), ctype
    finally:
        server.stop()


def exposed(tmp_path) -> tuple[dict[str, set[str]], str]:
    """{sample name: its labels} over a watch (one route, one event handled) and a serve over one job folder."""
    recorder = Recorder()
    watcher = Watcher(metrics=recorder)
    moved: list[str] = []
    watcher.add_trigger(Trigger(source=Folder(), event_type=EventType.FILE_ADDED, action=moved.append,
                                name="put_item:inbox->archive"))
    dropped = tmp_path / "x.dcm"
    dropped.write_bytes(b"\0" * 1234)
    watcher.fire(Event(EventType.FILE_ADDED, "inbox", str(dropped)))
    watcher.handle_pending()
    assert moved == [str(dropped)]
    journal = Journal(tmp_path / "study42" / "journal.sqlite")
    journal.mark("ACC1", DONE, dest_oid="o1", instances=3)
    journal.mark("ACC2", FAILED, error="NotFound: x")
    journal.close()
    texts = [scrape(WatchView(watcher, recorder))[0], scrape(JobsView([str(tmp_path / "study42")]))[0]]
    samples: dict[str, set[str]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, set()).update(sample.labels)
    return samples, texts[0]


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every dashboard target, dashboard variable and alert rule."""
    found: list[tuple[str, str]] = []

    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("expr", "query") and isinstance(value, str) and "diana_" in value:
                    found.append((where, value))
                walk(value, f"{where}/{node.get('title', node.get('name', key))}")
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(json.loads((MONITORING / "grafana-dashboard.json").read_text(encoding="utf-8")), "dashboard")
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            found.append((f"alert {rule['alert']}", rule["expr"]))
    return found


def test_every_dashboard_and_alert_query_names_exposed_metrics_and_labels(tmp_path):
    samples, watch_text = exposed(tmp_path)
    found = queries()
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text(encoding="utf-8"))
    assert len(dashboard["panels"]) >= 8 and len([w for w, _ in found if w.startswith("alert")]) >= 5
    labels = set().union(*samples.values()) | TARGET_LABELS
    for where, expr in found:
        bare = re.sub(r"\b(?:by|without)\s*\([^)]*\)|\{[^}]*\}", " ", expr)  # label lists and selectors out
        names = re.findall(r"\bdiana_[a-z_]+", bare)
        assert names, f"{where}: {expr!r} names no diana metric"
        for name in names:
            assert name in samples, f"{where}: {name} is not exposed by /metrics ({sorted(samples)})"
        for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            for label in filter(None, (x.strip() for x in group.split(","))):
                assert label in labels, f"{where}: label {label!r} is not exposed"
        for label in re.findall(r"[{,]\s*([a-z_]+)\s*=~?", expr):
            assert label in labels, f"{where}: label {label!r} is not exposed"
    # the conventions the queries rely on
    assert "job" not in set().union(*samples.values()), "a 'job' label collides with Prometheus' target label"
    assert samples["diana_job_studies"] == {"diana_job", "state"}
    assert 'diana_events_handled_total{route="put_item:inbox->archive"} 1.0' in watch_text
    assert 'diana_moved_bytes_total{route="put_item:inbox->archive"} 1234.0' in watch_text
    assert "diana_bytes_moved_total" not in watch_text


def test_openmetrics_when_the_scraper_asks(tmp_path):
    recorder = Recorder()
    watcher = Watcher(metrics=recorder)
    text, ctype = scrape(WatchView(watcher, recorder), "application/openmetrics-text; version=1.0.0")
    assert ctype.startswith("application/openmetrics-text") and text.endswith("# EOF\n")
    plain, plain_type = scrape(WatchView(watcher, recorder))
    assert plain_type.startswith("text/plain") and "# EOF" not in plain
