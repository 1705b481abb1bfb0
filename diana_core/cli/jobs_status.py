"""``diana jobs status JOB``: counts by state, rate, ETA and per-worker counts, for in-process and Celery jobs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from diana_core.cli.context import CliState, pass_state
from diana_core.cli.executing import executor_provider
from diana_core.serialize import iso_time


@click.command("status")
@click.argument("job")
@click.option("--executor", "executor_name", metavar="NAME",
              help="Executor service of a distributed job (default: what the job folder recorded).")
@click.option("--broker", envvar="DIANA_BROKER", metavar="URL", help="Broker of a Celery job (env DIANA_BROKER).")
@click.option("--json", "as_json", is_flag=True, help="JSON on stdout.")
@pass_state
def status_cmd(state: CliState, job: str, executor_name: str | None, broker: str | None, as_json: bool) -> None:
    """Where JOB stands: a job folder (--job-dir of `diana collect`), or the job id of a distributed job.

    Example: diana jobs status diana-job-accessions
    """
    from diana_core.usecases.jobstate import INFO_FILE, EmbeddedJobState
    from diana_core.usecases.jobstatus import job_status

    folder = Path(job)
    info: dict[str, Any] = {}
    if (folder / INFO_FILE).exists():
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    distributed = info.get("executor", "local") != "local" or not folder.is_dir()
    if distributed:
        provider = executor_provider(state, executor_name or info.get("service"), broker)
        if provider is None:
            raise click.UsageError(f"{job!r} is no job folder; for a distributed job give --executor or --broker")
        job_state: Any = provider.job_state(str(info.get("job") or job))
    else:
        if not (folder / "journal.sqlite").exists():
            raise click.UsageError(f"{job!r} holds no journal: not a job folder")
        job_state = EmbeddedJobState(folder)
    try:
        status = job_status(job_state)
    finally:
        job_state.close()
    data = {"job": status.job, "executor": status.executor, "total": status.total, "counts": status.counts,
            "remaining": status.remaining, "studies_per_minute": round(status.rate, 2),
            "eta_seconds": None if status.eta is None else round(status.eta), "per_worker": status.per_worker,
            "started": iso_time(status.started) if status.started else None,
            "finished": iso_time(status.finished) if status.finished else None}
    if as_json or state.json_output:
        click.echo(json.dumps(data))
        return
    from diana_core.cli.render import summary_table

    counts = ", ".join(f"{k} {v}" for k, v in sorted(status.counts.items())) or "none yet"
    eta = "finished" if status.finished else ("-" if status.eta is None else _duration(status.eta))
    rows = {"job": status.job, "executor": status.executor, "studies": status.total, "states": counts,
            "remaining": status.remaining, "rate": f"{status.rate:.1f} studies/min", "ETA": eta,
            "started": iso_time(status.started) if status.started else "-"}
    for worker, n in sorted(status.per_worker.items()):
        rows[f"worker {worker}"] = f"{n} done"
    summary_table(f"diana jobs status {os.path.basename(job.rstrip('/')) or job}", rows)


def _duration(seconds: float) -> str:
    minutes, sec = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{sec:02d}s"
