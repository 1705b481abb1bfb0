"""``diana jobs purge JOB``: remove what a finished job left of patient data outside its key file and journal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from diana_core.cli.context import CliState, pass_state
from diana_core.cli.executing import executor_provider


@click.command("purge")
@click.argument("job_dir", metavar="JOB", type=click.Path(exists=True, file_okay=False))
@click.option("--executor", "executor_name", metavar="NAME",
              help="Executor service of a distributed job (default: what the job folder recorded).")
@click.option("--broker", envvar="DIANA_BROKER", metavar="URL", help="Broker of a Celery job (env DIANA_BROKER).")
@click.option("--job-id", default=None, help="Job id of a distributed job (default: the one JOB recorded, else "
              "JOB's folder name).")
@click.option("--rewrite-aof", is_flag=True,
              help="Then ask Redis to rewrite its append-only file (BGREWRITEAOF): until then the AOF still holds "
                   "every deleted record, the re-identification rows included.")
@pass_state
def purge_cmd(state: CliState, job_dir: str, executor_name: str | None, broker: str | None, job_id: str | None,
              rewrite_aof: bool) -> None:
    """Remove a finished job's scratch (JOB/tmp) and, for a distributed job (--executor/--broker, or as JOB
    recorded), everything the broker's Redis holds of it (journal, key rows, facts, claims: diana:job:<job>:*).
    JOB's key.csv, journal and audit trail stay. Refused while a collect runs in JOB.

    Example: diana jobs purge jobs/study42 --broker redis://queue:6379/0 --job-id study42 --rewrite-aof
    """
    import shutil

    from diana_core.usecases.jobfiles import JobLock
    from diana_core.usecases.jobstate import INFO_FILE

    folder = Path(job_dir)
    info: dict[str, Any] = {}
    if (folder / INFO_FILE).exists():
        info = json.loads((folder / INFO_FILE).read_text(encoding="utf-8"))
    lock = JobLock(folder)  # JobLocked (one line) while a collect runs in it
    removed: dict[str, Any] = {"job": job_id or str(info.get("job") or folder.name)}
    try:
        removed["scratch_removed"] = (folder / "tmp").exists()
        shutil.rmtree(folder / "tmp", ignore_errors=True)  # study archives (identified) a killed run left
        if executor_name or broker or info.get("executor", "local") != "local":
            provider = executor_provider(state, executor_name or info.get("service"), broker)
            if provider is None:
                raise click.UsageError(f"{job_dir!r} ran on {info.get('executor')}: give --executor or --broker")
            shared = provider.job_state(removed["job"])
            try:
                removed["shared_records_removed"] = shared.purge(compact=rewrite_aof)
                removed["aof_rewrite_started"] = rewrite_aof
            finally:
                shared.close()
    finally:
        lock.release()
    state.emit(removed, "purged " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in removed.items()))
