"""``diana jobs report JOB``: a collection job's report as text tables (on a terminal), CSV (per study) or a
self-contained HTML page (``--format html`` or ``-o report.html``)."""

from __future__ import annotations

import sys
from html import escape
from pathlib import Path

import click

from diana_core.cli.context import CliState, pass_state
from diana_core.cli.plugin_api import show_ids_option


@click.command("report")
@click.argument("job_dir", metavar="JOB", type=click.Path(exists=True, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "html"]), default=None,
              help="text: tables; csv: one row per study (for a spreadsheet); html: a page with counts and a "
                   "throughput chart. Default: from -o's suffix (.html, .csv), else text on a terminal, HTML when "
                   "redirected.")
@click.option("-o", "--out", type=click.Path(dir_okay=False), help="Write here instead of stdout.")
@show_ids_option
@pass_state
def report_cmd(state: CliState, job_dir: str, fmt: str | None, out: str | None) -> None:
    """Report on the collection job in folder JOB (its --job-dir): per-study state, instance counts, timings,
    failures, de-identification summary; the HTML page charts throughput over time. Worklist ids (accession
    numbers) only with --show-ids; otherwise studies are named by row and pseudonym.

    Example: diana jobs report jobs/study42 -o study42.html
    """
    from diana_core.usecases.jobreport import job_report, write_csv

    report = job_report(job_dir, show_ids=state.show_ids)
    if state.json_output:
        state.emit(report.summary())
        return
    fmt = fmt or _default_format(out)
    fh = open(out, "w", encoding="utf-8", newline="") if out else sys.stdout  # noqa: SIM115
    try:
        if fmt == "text":
            render_text(report, fh)
        elif fmt == "csv":
            write_csv(report, fh)
        else:
            fh.write(render_html(report))
    finally:
        if out:
            fh.close()
    if out:
        click.echo(f"report written to {Path(out)}", err=True)


def _default_format(out: str | None) -> str:
    suffix = Path(out).suffix.lower() if out else ""
    if suffix == ".csv":
        return "csv"
    if suffix in (".html", ".htm") or out:
        return "html"
    return "text" if sys.stdout.isatty() else "html"  # redirected: the page, as before


def render_text(report: object, fh: object) -> None:
    """Summary, states, failures by kind and the per-study rows as terminal tables."""
    from rich.console import Console
    from rich.table import Table

    from diana_core.usecases.jobreport import STUDY_COLUMNS, JobReport

    assert isinstance(report, JobReport)
    console = Console(file=fh, highlight=False)  # type: ignore[arg-type]
    facts = report.summary()
    summary = Table(title=f"diana job {report.job}", show_header=False)
    for key in ("studies", "instances", "started", "last_update", "seconds", "studies_per_minute",
                "pseudonymized_studies", "pseudonymized_patients"):
        summary.add_row(key, str(facts[key]))
    summary.add_row("states", ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())) or "none")
    summary.add_row("failures", ", ".join(f"{k} {v}" for k, v in sorted(report.failures.items())) or "none")
    studies = Table(*STUDY_COLUMNS, title="studies")
    for row in report.rows:
        studies.add_row(*(str(getattr(row, c)) for c in STUDY_COLUMNS))
    console.print(summary)
    console.print(studies)


def render_html(report: object) -> str:
    """A standalone HTML page (inline CSS + SVG, no scripts) for a ``JobReport``."""
    from diana_core.cli.charts import svg_bars
    from diana_core.usecases.jobreport import STUDY_COLUMNS, JobReport

    assert isinstance(report, JobReport)
    facts = report.summary()
    chart = svg_bars(report.throughput, f"studies done per {report.bucket_seconds} s")
    head = "".join(f"<th>{escape(c)}</th>" for c in STUDY_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(getattr(r, c)))}</td>" for c in STUDY_COLUMNS) + "</tr>"
                   for r in report.rows)
    listed = ("studies", "instances", "started", "last_update", "seconds", "studies_per_minute",
              "pseudonymized_studies", "pseudonymized_patients")
    summary = "".join(f"<tr><th>{k}</th><td>{escape(str(facts[k]))}</td></tr>" for k in listed)
    counts = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in sorted(report.counts.items()))
    failures = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>" for k, v in sorted(report.failures.items()))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>diana job {escape(report.job)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:13px}}</style></head><body>
<h1>Job {escape(report.job)}</h1>
<table id="summary">{summary}</table>
<h2>States</h2><table id="counts">{counts}</table>
<h2>Failures by kind</h2><table id="failures">{failures or '<tr><td>none</td></tr>'}</table>
<h2>Throughput</h2>{chart}
<h2>Studies</h2><table id="studies"><tr>{head}</tr>{body}</table>
</body></html>
"""
