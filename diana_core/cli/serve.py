"""``diana serve JOB...``: a read-only status page and /metrics for collection jobs (their --job-dir folders).

The watcher's live page is ``diana watch --status-port``; this one reads job folders on each request, so it shows
jobs that run in other processes (or on workers) as they progress, and jobs that ended.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from diana_core.cli.context import CliState, pass_state
from diana_core.errors import DianaError


class JobsView:
    """Job folders as the status server shows them (per-job summaries, throughput charts, gauges)."""

    page = "jobs"

    def __init__(self, job_dirs: list[str]) -> None:
        self.job_dirs = [Path(d) for d in job_dirs]

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def _reports(self) -> list[tuple[Path, Any, str | None]]:
        from diana_core.usecases.jobsummary import job_summary  # no per-study rows: the page polls every second

        out: list[tuple[Path, Any, str | None]] = []
        for folder in self.job_dirs:
            try:
                out.append((folder, job_summary(folder), None))
            except DianaError as exc:
                out.append((folder, None, str(exc)))
        return out

    def status(self) -> dict[str, Any]:
        from diana_core.cli.charts import svg_bars

        jobs = []
        for folder, report, error in self._reports():
            if report is None:
                jobs.append({"job": folder.name, "error": error})
                continue
            summary = report.summary()
            summary["chart_svg"] = svg_bars(report.throughput, f"{report.job}: studies done per "
                                            f"{report.bucket_seconds} s", width=640, height=180)
            jobs.append(summary)
        return {"jobs": jobs}

    def healthy(self) -> tuple[bool, dict[str, Any]]:
        unreadable = [folder.name for folder, report, _ in self._reports() if report is None]
        return not unreadable, {"status": "ok" if not unreadable else "unreadable", "unreadable": unreadable}

    def metric_families(self) -> Any:
        from prometheus_client.core import GaugeMetricFamily

        # "diana_job", not "job": Prometheus sets its own "job" label (the scrape target) on every series

        studies = GaugeMetricFamily("diana_job_studies", "Worklist items of a job by state",
                                    labels=["diana_job", "state"])
        instances = GaugeMetricFamily("diana_job_instances", "Instances moved by a job", labels=["diana_job"])
        rate = GaugeMetricFamily("diana_job_studies_per_minute", "Studies done per minute", labels=["diana_job"])
        for _, report, _ in self._reports():
            if report is None:
                continue
            for state, count in sorted(report.counts.items()):
                studies.add_metric([report.job, state], count)
            instances.add_metric([report.job], report.instances)
            rate.add_metric([report.job], report.studies_per_minute)
        yield from (studies, instances, rate)


@click.command("serve")
@click.argument("job_dirs", metavar="JOB...", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Anything but loopback needs --token.")
@click.option("--token", envvar="DIANA_STATUS_TOKEN", help="Token (Bearer, basic-auth password or ?token=).")
@click.option("--max-seconds", type=float, help="Stop after this many seconds (for scripts and tests).")
@pass_state
def serve_cmd(state: CliState, job_dirs: tuple[str, ...], port: int, host: str, token: str | None,
              max_seconds: float | None) -> None:
    """Serve a read-only status page (/), /status.json, /metrics and /healthz for the collection jobs in the
    folders JOB... (their --job-dir), until Ctrl-C. No PHI: counts, rates, pseudonymized ids, error kinds.

    Example: diana serve jobs/study42 jobs/study43 --port 8000
    """
    import signal
    import threading

    from diana_core.cli.status_server import StatusServer

    server = StatusServer(JobsView(list(job_dirs)), host=host, port=port, token=token).start()
    click.echo(f"status page: http://{host}:{server.port}/  (metrics: /metrics, health: /healthz)", err=True)
    done = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: done.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        done.wait(max_seconds)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
