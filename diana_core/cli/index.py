"""``diana index`` and ``diana upload``: register a folder's DICOM files in a registry, upload from the registry."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import click

from diana_core import redaction
from diana_core.cli.context import CliState, pass_state
from diana_core.cli.executing import executor_options, executor_provider, worker_spec
from diana_core.cli.jobs_audit import audit_option, open_trail
from diana_core.cli.pseudonymizing import pseudonymizer_for, pseudonymizing_options
from diana_core.cli.render import progress_bar


def default_registry_path(basepath: str) -> str:
    """The embedded index of a folder, kept out of the scanned tree (which may be a read-only share):
    $XDG_DATA_HOME/diana/index-<hash of PATH>.sqlite, by default under ~/.local/share."""
    digest = hashlib.sha256(os.path.abspath(basepath).encode("utf-8")).hexdigest()[:16]
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return os.path.join(data, "diana", f"index-{digest}.sqlite")


def named_failures(word: str, failures: list[tuple[str, str]], count: int, shown_max: int = 20) -> str:
    """Console lines for failed files: names hashed unless --show-ids (file names often carry PHI); --json lists
    them in full for whoever asked for a machine-readable report."""
    from diana_core.redaction import scrub, showing_ids, shown

    text = "".join(f"\n  {word} {shown(f)}: {scrub(r, f)}" for f, r in failures[:shown_max])
    if count > shown_max:
        text += f"\n  ... and {count - shown_max} more (--json lists {len(failures)})"
    if failures and not showing_ids():
        text += "\n  (file names shown as keyed hashes: --show-ids or --json names them)"
    return text


def open_registry(state: CliState, spec: str | None, basepath: str) -> Any:
    """A registry service by name, a .sqlite file path, or (None) the embedded default for basepath."""
    from diana_core.embedded import SqliteRegistry

    if spec is None:
        from diana_core.delivery import private_dirs

        path = Path(default_registry_path(basepath))
        private_dirs(path.parent, path.parent.parent)  # our data folder: owner-only, like the state folder
        return SqliteRegistry(path=str(path))
    if spec.endswith((".sqlite", ".sqlite3", ".db")):
        return SqliteRegistry(path=spec)
    return state.endpoint(spec)


def _rate_cb(advance: Any) -> Any:
    """Adapt the use cases' ``progress(done, total)`` callback to the shared progress bar (files/s as a field)."""
    import time

    from diana_core.cli.startup import held, settled

    start = time.perf_counter()

    def update(done: int, total: int | None) -> None:
        if held():  # the first file is done: start-up is over (its objects frozen, the collector back to normal)
            settled()
        elapsed = time.perf_counter() - start
        advance(completed=done, total=total, rate=f"{done / elapsed:,.0f}/s" if elapsed > 0 else "-")

    return update


@click.command("index")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.argument("registry", required=False)
@click.option("--orthanc-layout", is_flag=True, help="PATH is an Orthanc storage folder (PATH/xx/yy/files).")
@click.option("--pattern", default=None, help="File name pattern [default: '*.dcm'; '*' with --orthanc-layout].")
@click.option("--pool", default=0, show_default=True, help="Threads reading headers (0: read in the main thread).")
@click.option("--quarantine", type=click.Path(file_okay=False), help="Move bad files into this folder.")
@click.option("--json", "as_json", is_flag=True, help="JSON summary on stdout.")
@executor_options
@audit_option
@pass_state
def index_cmd(state: CliState, path: str, registry: str | None, orthanc_layout: bool, pattern: str | None,
              pool: int, quarantine: str | None, as_json: bool, executor_name: str | None,
              broker: str | None, audit_path: str | None) -> None:
    """Register the DICOM files under PATH in REGISTRY (a service name, a .sqlite file, or by default an
    embedded index in $XDG_DATA_HOME/diana, never inside PATH), one collection per AccessionNumber. Exit 1 if any
    file is bad. The summary says where the registry is.

    Example: diana index /data/dicom --pool 2 --quarantine /data/bad
    """
    from diana_core.usecases.indexer import FileIndexer

    state.json_output = state.json_output or as_json
    basepath = os.path.abspath(path)
    reg = open_registry(state, registry, basepath)
    indexer = FileIndexer(pool_size=pool)
    provider = executor_provider(state, executor_name, broker)
    executor = provider.executor() if provider is not None else None
    rex = pattern or ("*" if orthanc_layout else "*.dcm")
    trail = open_trail(audit_path, "index", basepath, getattr(reg, "name", None) or getattr(reg, "path", None))
    style = "ORTHANC" if orthanc_layout else "UNSTRUCTURED"
    try:
        with progress_bar("indexing", total=None, enabled=not state.json_output) as advance:
            if executor is not None:
                from diana_core.usecases.index_units import index_with

                result = index_with(indexer, executor, basepath, reg, rex, style,
                                    os.path.abspath(quarantine) if quarantine else None, "AccessionNumber",
                                    _rate_cb(advance))
            else:
                result = indexer.index_path(basepath, reg, rex=rex, recurse_style=style, quarantine=quarantine,
                                            progress=_rate_cb(advance))
    finally:
        if executor is not None:
            executor.close()
    summary = {"path": basepath, "registry": getattr(reg, "path", None) or getattr(reg, "name", None),
               "prefix": result.prefix, "checked": result.checked, "registered": result.registered,
               "bad": result.bad_count, "quarantined": result.quarantined, "seconds": round(result.elapsed, 3),
               "files_per_second": round(result.rate, 1), "bad_files": [{"file": f, "reason": r} for f, r in result.bad]}
    text = (f"checked {result.checked}, registered {result.registered}, bad {result.bad_count} "
            f"in {result.elapsed:.1f} s ({result.rate:,.0f} files/s); registry {summary['registry']}")
    text += named_failures("bad", [(f, r.removeprefix(os.path.basename(f) + ": ")) for f, r in result.bad],
                           result.bad_count)
    trail.finish(checked=result.checked, registered=result.registered, bad=result.bad_count,
                 quarantined=result.quarantined)
    state.emit(summary, text)
    if result.bad_count:
        raise SystemExit(1)


@click.command("upload")
@click.argument("path", type=click.Path(exists=True, file_okay=False))
@click.argument("registry")
@click.argument("dest")
@click.argument("collection", required=False)
@click.option("--all", "upload_all", is_flag=True, help="Upload every collection registered for PATH.")
@click.option("--workers", default=4, show_default=True, help="Uploads in flight.")
@click.option("--check-exists", is_flag=True, help="Ask DEST for each instance id first (skip without sending).")
@click.option("--restart", is_flag=True, help="With --all: send every collection again, ignoring the ones earlier "
              "runs to DEST recorded in REGISTRY as uploaded (by default they are skipped without reading them).")
@click.option("--json", "as_json", is_flag=True, help="JSON summary on stdout.")
@click.option("-a", "--anonymize", is_flag=True, help="Pseudonymize each file locally first: DEST never sees the "
              "originals (key from $DIANA_PSEUDONYM_KEY).")
@pseudonymizing_options
@executor_options
@audit_option
@pass_state
def upload_cmd(state: CliState, path: str, registry: str, dest: str, collection: str | None, upload_all: bool,
               workers: int, check_exists: bool, restart: bool, as_json: bool, anonymize: bool, executor_name: str | None,
               broker: str | None, audit_path: str | None, profile: str | None, unkeyed: bool,
               job_dir: str | None) -> None:
    """Upload the files registered for PATH in REGISTRY (by `diana index`; "default" = the embedded index) to DEST: one COLLECTION
    (AccessionNumber) or --all. Instances already in DEST are skipped. Exit 1 if any upload failed.

    Example: diana -s services.yml upload /data/dicom default pacs --all
    """
    from diana_core.usecases.indexer import FileIndexer

    if bool(collection) == upload_all:
        raise click.UsageError("give either a COLLECTION or --all")
    state.json_output = state.json_output or as_json
    basepath = os.path.abspath(path)
    reg = open_registry(state, None if registry == "default" else registry, basepath)
    provider = executor_provider(state, executor_name, broker)
    if anonymize and provider is not None:
        raise click.UsageError("--anonymize runs in this process: use it without --executor")
    target = state.endpoint(worker_spec(state, dest, provider))
    pz = pseudonymizer_for(anonymize, profile, unkeyed, job_dir, target)
    if anonymize:
        from diana_core.usecases.pseudonymized_dest import PseudonymizingDest

        target = PseudonymizingDest(target, pz)
    indexer = FileIndexer()
    trail = open_trail(audit_path, "upload", basepath, dest, anonymize, hide=(collection or "",),
                       collection=collection and redaction.shown(collection))
    executor = provider.executor() if provider is not None else None
    try:
        with progress_bar("uploading", total=None, enabled=not state.json_output) as advance:
            kwargs = {"workers": workers, "check_exists": check_exists, "progress": _rate_cb(advance)}
            if executor is not None:
                from diana_core.usecases.index_units import upload_with

                result = upload_with(indexer, executor, basepath, reg, target,
                                     [collection] if collection else None, **kwargs)
            elif collection:
                result = indexer.upload_collection(collection, basepath, reg, target, **kwargs)
            else:  # resumable: collections sent to DEST (in this mode) are marked in the registry
                resume = f"{dest}:{'pseudonymized' if anonymize else 'original'}"
                result = indexer.upload_path(basepath, reg, target, resume=resume, restart=restart, **kwargs)
    finally:
        if executor is not None:
            executor.close()
    for file, why in result.failed:
        trail.item("failed", original=file, reason=why)
    if collection:  # one study: its line, as collect writes per study
        trail.item("failed" if result.failed else "done", result.done, original=collection)
    trail.finish(done=result.done, skipped=result.skipped, failed=len(result.failed))
    summary = {"done": result.done, "skipped": result.skipped, "resumed": result.resumed, "failed": len(result.failed),
               "seconds": round(result.elapsed, 3), "failures": [{"file": f, "reason": r} for f, r in result.failed]}
    text = (f"uploaded {result.done}, skipped {result.skipped}, failed {len(result.failed)} in {result.elapsed:.1f} s"
            + (f" ({result.resumed} skipped unread: uploaded by an earlier run)" if result.resumed else "")
            + named_failures("failed", result.failed, len(result.failed)))
    state.emit(summary, text)
    if pz is not None and pz.report.quarantined and pz.report.store is not None:
        click.echo(f"{len(pz.report.quarantined)} instances quarantined; {pz.report.store.hint()}", err=True)
    if result.failed:
        raise SystemExit(1)
