"""``diana collect``: pull the studies of a worklist from a source into a destination, resumably."""

from __future__ import annotations

from pathlib import Path

import click

from diana_core.cli.context import CliState, pass_state
from diana_core.cli.executing import (
    executor_options,
    executor_provider,
    merge_limits,
    provider_limits,
    remember_distributed_job,
    worker_spec,
)
from diana_core.cli.plugin_api import show_ids_option


@click.command("collect")
@click.argument("worklist")
@click.argument("source")
@click.argument("dest")
@click.option("--anonymize/--no-anonymize", default=True, show_default=True,
              help="Pseudonymize reproducibly with the project key ('diana key new', or $DIANA_PSEUDONYM_KEY).")
@click.option("--unkeyed", is_flag=True, help="Pseudonymize without a key: anyone holding the originals can "
              "recompute the pseudonyms (refused otherwise when no key is set).")
@click.option("--profile", default=None, metavar="OPTIONS|FILE.yml",
              help="De-identification profile: PS3.15 options, e.g. basic,retain-uids,clean-descriptors, or a YAML "
                   "file with options/keep/remove/replace (default: basic,retain-modified-dates,"
                   "retain-patient-characteristics).")
@click.option("--pool", "pool_size", default=2, show_default=True, help="Studies processed in parallel.")
@click.option("--job-dir", type=click.Path(file_okay=False), help="Job folder: journal, key file, failure report "
              "(default ./diana-job-<worklist name>). Reruns with the same folder skip what is done.")
@click.option("--dry-run", is_flag=True, help="Only resolve each worklist item on the source; move nothing.")
@click.option("--key-column", default="AccessionNumber", show_default=True, help="Worklist column to match on.")
@click.option("-q", "--query", "query_terms", multiple=True, metavar="KEY=VALUE",
              help="When WORKLIST is a search service (Montage): its query, e.g. -q q=pneumonia -q modality=CT "
                   "-q start_date=2024-01-01.")
@click.option("--retries", default=1, show_default=True, help="Extra passes over studies whose PACS was unreachable.")
@click.option("--retry-delay", default=30.0, show_default=True, help="Seconds before each retry pass.")
@click.option("--uid-scheme", type=click.Choice(["keyed", "diana"]), default="keyed", show_default=True,
              help="keyed: collision-free UIDs; diana: the original DIANA hierarchical UIDs.")
@click.option("--domain", default=None, help="Query and retrieve from this DICOM modality of an Orthanc SOURCE "
              "(the original's collector domain).")
@click.option("--project", default=None, help="When WORKLIST is a project folder: the project whose "
              "<project>.studies.txt (one accession number per line) to read (default: the folder's name).")
@click.option("--job-id", help="Job name in a shared job state (default: the job folder's name).")
@click.option("--max-retrieves", type=int, help="At most this many studies retrieved from SOURCE at once "
              "(across all workers).")
@click.option("--rate", type=float, help="At most this many studies per second from SOURCE (token bucket).")
@click.option("--window", help="Transfer window for SOURCE, e.g. 19:00-07:00: outside it, work is held.")
@executor_options
@show_ids_option
@pass_state
def collect_cmd(state: CliState, worklist: str, source: str, dest: str, anonymize: bool, pool_size: int,
                job_dir: str | None, dry_run: bool, key_column: str, query_terms: tuple[str, ...],
                retries: int, retry_delay: float, uid_scheme: str, domain: str | None, project: str | None,
                job_id: str | None, max_retrieves: int | None, rate: float | None, window: str | None,
                executor_name: str | None, broker: str | None, unkeyed: bool, profile: str | None) -> None:
    """Collect every study in WORKLIST from SOURCE into DEST.

    \b
    WORKLIST  a CSV with an AccessionNumber column (or a Montage export), a .txt of accession numbers (one per
              line), a project folder with <project>.studies.txt, or a service (Montage) with -q
    SOURCE    a service: Orthanc, ProxiedDicom (remote PACS via Orthanc), or a DcmDir folder
    DEST      a service: Orthanc, or a DcmDir folder (anonymizing: true pseudonymizes on write;
              study_zips: true keeps one zip per study)

    \b
    Example:
      diana -s services.yml collect accessions.csv hospital_pacs research --pool 4 --job-dir jobs/covid
    Interrupted? Run the same command again: done studies are skipped without touching the PACS.
    The key file (original -> pseudonym) is written to the job folder only, with owner-only permissions.
    """
    from diana_core.cli.plugin_api import failure_lines, progress_bar, summary_table
    from diana_core.pseudonym import Pseudonymizer
    from diana_core.usecases.collector import Collector, read_worklist

    provider = executor_provider(state, executor_name, broker)
    src = state.endpoint(worker_spec(state, source, provider))
    dst = state.endpoint(worker_spec(state, dest, provider))
    wl_source = state.services[worklist] if worklist in state.services else worklist
    query = {}
    for term in query_terms:
        k, sep, v = term.partition("=")
        if not sep:
            raise click.BadParameter(f"{term!r} must be KEY=VALUE", param_hint="--query")
        query[k] = v
    project = project or (Path(worklist).name if Path(worklist).is_dir() else Path(worklist).stem.removesuffix(".studies"))
    items = read_worklist(wl_source, key_column, query, project=project)
    pseudonymizer = Pseudonymizer(uid_scheme=uid_scheme, unkeyed=unkeyed, profile=profile)
    if anonymize:
        from diana_core.plugins import check_profile

        pseudonymizer.require_key()
        check_profile(pseudonymizer.profile)
    collector = Collector(pool_size=pool_size, pseudonymizer=pseudonymizer, key=key_column,
                          retries=retries, retry_delay=retry_delay)
    folder = Path(job_dir or f"diana-job-{project}")
    limits = merge_limits(provider_limits(provider), src.name, max_retrieves, rate, window)
    executor = job_state = None
    if provider is not None:
        executor = provider.executor(limits)
        job_state = provider.job_state(job_id or folder.resolve().name, key_column)
        remember_distributed_job(folder, job_state.job, provider.name)
    elif limits:
        from diana_core.protection import LocalGuard

        collector.guard = LocalGuard(limits)
    try:
        with progress_bar("collect", total=len(items), enabled=not state.json_output) as advance:
            def progress(outcome: str, key: str, counts: dict[str, int]) -> None:
                advance(done=counts["done"], skipped=counts["skipped"], failed=counts["failed"])

            result = collector.run(project, items, src, domain, dst, anonymize=anonymize, job_dir=folder,
                                   dry_run=dry_run, progress=progress, executor=executor, state=job_state)
    finally:
        if executor is not None:
            executor.close()
        if job_state is not None:
            job_state.close()
    rows = {"studies": result.total, "done" if not dry_run else "resolved": result.done, "skipped": result.skipped,
            "failed": len(result.failed), "instances": result.instances, "seconds": round(result.seconds, 1),
            "key_file": result.key_file, "failure_report": result.failure_report}
    if anonymize:  # which key (its id, never the key) and profile made the pseudonyms, what was held back
        rows.update({"key_id": result.key_id, "profile": result.profile, "quarantined": result.quarantined,
                     "deid_report": result.deid_report})
    counts = {k: v for k, v in rows.items() if isinstance(v, int | float)}
    state.notifier.send("job_failed" if result.failed else "job_finished", "collect", counts, name=project)
    if state.json_output:  # same keys as the table; failed ids only with --show-ids (they are in the report)
        state.emit({**rows, "failures": result.failed} if state.show_ids else rows)
    else:
        summary_table("diana collect", {k: "-" if v is None else v for k, v in rows.items()})
        for line in failure_lines(result.failed, state.show_ids, result.failure_report):
            click.echo(line, err=True)
    if anonymize and result.quarantined:
        click.echo(f"{result.quarantined} instances held back (may show identifying pixels); review: diana "
                   f"quarantine list {folder} (show, clean, release), or collect with --profile ...,clean-pixels",
                   err=True)
    if result.failed:
        raise SystemExit(1)
