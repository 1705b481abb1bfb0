"""Generic item commands over named services: get, put, find, delete (items flow as Dixels)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from diana_core.cli.context import CliState, pass_state
from diana_core.cli.formats import FORMATS, emit_records
from diana_core.cli.jobs_audit import audit_option, open_trail
from diana_core.cli.pseudonymizing import pseudonymizer_for, pseudonymizing_options
from diana_core.dicom import DicomLevel
from diana_core.dixel import Dixel, DixelView
from diana_core.errors import DianaError

LEVELS = click.Choice([str(level) for level in DicomLevel], case_sensitive=False)


def _level(value: str) -> DicomLevel:
    return DicomLevel.from_label(value)


def _render(dixel: Dixel) -> dict[str, Any]:
    out: dict[str, Any] = {"level": str(dixel.level), "meta": dixel.meta, "tags": dixel.tags}
    if dixel.file is not None:
        out["file_bytes"] = len(dixel.file)
    return out


@click.command("get")
@click.argument("service")
@click.argument("items", nargs=-1, required=True)
@click.option("-l", "--level", default="studies", type=LEVELS, show_default=True, help="DICOM level of the ITEMS.")
@click.option("--view", default="tags", show_default=True, help="meta, metakv, tags, file, pixels; combine: tags,meta")
@click.option("-o", "--out", type=click.Path(file_okay=False), help="Write FILE views into this folder.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True,
              help="Output: json, jsonl (one line per item), csv, or a table.")
@pass_state
def get_cmd(state: CliState, service: str, items: tuple[str, ...], level: str, view: str, out: str | None,
            fmt: str) -> None:
    """Get ITEMS (Orthanc ids, file names...) from SERVICE and print them.

    Example: diana -s services.yml get pacs 3ab1d0b2-... --view tags,meta
    """
    endpoint = state.endpoint(service)
    wanted = DixelView.from_label(view)
    lvl = _level(level)
    if DixelView.FILE in wanted and lvl < DicomLevel.INSTANCES and not out:
        raise click.UsageError(f"the file of a {lvl} item is a zip archive: give -o FOLDER to write it")
    results = []
    for item in items:
        kwargs: dict[str, Any] = {}
        target = None
        if out and DixelView.FILE in wanted:
            Path(out).mkdir(parents=True, exist_ok=True)
            target = Path(out) / f"{item}{'.zip' if lvl < DicomLevel.INSTANCES else '.dcm'}"
            if lvl < DicomLevel.INSTANCES:
                kwargs["dest"] = str(target)  # streamed to disk by the endpoint
        dixel = endpoint.get(item, level=lvl, view=wanted, **kwargs)
        if target is not None and dixel.file is not None:
            target.write_bytes(dixel.file)
        rendered = _render(dixel)
        if target is not None:
            rendered["written"] = str(target)
        results.append(rendered)
    if fmt != "json":
        emit_records(results, fmt, state.json_output)
        return
    state.emit(results if len(results) > 1 else results[0])


@click.command("put")
@click.argument("dest")
@click.argument("items", nargs=-1, required=True)
@click.option("--from", "source", help="Copy ITEMS (ids; whole studies by default) from this service.")
@click.option("-l", "--level", default=None, type=LEVELS,
              help="Level of the ITEMS: instances for files (default), studies with --from (default).")
@click.option("--workers", default=4, show_default=True, help="Parallel uploads.")
@click.option("-a", "--anonymize", is_flag=True, help="Pseudonymize locally first: DEST never sees the originals "
              "(the original's oput -a; key from $DIANA_PSEUDONYM_KEY).")
@pseudonymizing_options
@audit_option
@pass_state
def put_cmd(state: CliState, dest: str, items: tuple[str, ...], source: str | None, level: str | None, workers: int,
            anonymize: bool, audit_path: str | None, profile: str | None, unkeyed: bool, job_dir: str | None) -> None:
    """Put ITEMS into DEST: DICOM files (or folders of them), or ids copied --from another service.

    \b
    Examples:
      diana -s services.yml put research ./incoming/*.dcm --anonymize
      diana -s services.yml put research --from pacs 3ab1d0b2-...      (whole studies)
      diana put ./research ./ultrasound --anonymize --profile basic,clean-pixels
    """
    from diana_core.cli.plugin_api import progress_bar

    endpoint = state.endpoint(dest)
    pz = pseudonymizer_for(anonymize, profile, unkeyed, job_dir, endpoint)
    if anonymize:
        from diana_core.usecases.pseudonymized_dest import PseudonymizingDest

        endpoint = PseudonymizingDest(endpoint, pz)
    if source:
        src = state.endpoint(source)
        total = len(items)
    else:
        paths, refused = _plausible(_files(items))
        if refused and not paths:
            raise refused[0][1]  # one line naming the file, before anything is read or sent
        total = len(paths)
    trail = open_trail(audit_path, "put", source or "files", dest, anonymize, hide=items, items=total)
    with progress_bar("put", total=total, enabled=not state.json_output) as advance:
        def progress(done: int, _total: int | None) -> None:
            advance(completed=done, total=total)

        if source:
            result = _copy_from(src, endpoint, items, _level(level or "studies"), workers, progress)
        else:
            dixels = (Dixel(meta={"FileName": str(p)}, file=p.read_bytes(), level=DicomLevel.INSTANCES)
                      for p in paths)
            result = endpoint.put_many(dixels, workers=workers, progress=progress)
    if not source:
        result.failed[:0] = [(str(p), str(exc)) for p, exc in refused]
    failures = [{"item": i, "reason": why} for i, why in result.failed]
    for item, why in result.failed:
        trail.item("failed", original=str(item), reason=str(why))
    trail.finish(done=result.done, skipped=result.skipped, failed=len(result.failed))
    state.emit({"done": result.done, "skipped": result.skipped, "failed": len(result.failed), "failures": failures},
               f"put {result.done}, skipped {result.skipped}, failed {len(result.failed)}"
               + "".join(f"\n  failed {i}: {why}" for i, why in result.failed))
    if pz is not None and pz.report.quarantined and pz.report.store is not None:
        click.echo(f"{len(pz.report.quarantined)} instances quarantined; {pz.report.store.hint()}", err=True)
    if result.failed:
        raise SystemExit(1)


def _plausible(paths: Any) -> tuple[list[Any], list[tuple[Any, Exception]]]:
    """Split files into those that may be read and the refused ones with their one-line error: a file over
    64 MiB must start like DICOM and stay within the per-instance limit, so a 2 GiB file of zeros is refused after
    136 bytes, never read into memory (smaller files go to the destination, which judges them)."""
    from diana_core.delivery import refuse_unless_plausible
    from diana_core.errors import DianaError, InvalidDicom

    ok: list[Any] = []
    refused: list[tuple[Any, Exception]] = []
    for path in paths:
        try:
            if os.path.getsize(path) > 64 << 20:
                refuse_unless_plausible(path)
        except DianaError as exc:
            refused.append((path, exc))
        except OSError as exc:
            refused.append((path, InvalidDicom(f"{os.path.basename(path)}: cannot read ({exc.strerror or exc})")))
        else:
            ok.append(path)
    return ok, refused


def _copy_from(src: Any, dest: Any, items: tuple[str, ...], level: DicomLevel, workers: int,
               progress: Any = None) -> Any:
    """Copy items from src: instances in bulk; studies/series one archive at a time, streamed through a temp file."""
    from diana_core.ports import BulkResult
    from diana_core.usecases.routes import file_of

    if level >= DicomLevel.INSTANCES:
        return dest.put_many((src.get(i, level=level, view=DixelView.FILE) for i in items), workers=workers,
                             progress=progress)
    done, failed = 0, []
    for item in items:
        try:
            with file_of(src, Dixel(meta={"ID": item}, level=level), level) as archive:
                dest.put(archive)
            done += 1
        except DianaError as exc:
            failed.append((item, str(exc)))
        if progress is not None:
            progress(done + len(failed), len(items))
    return BulkResult(done=done, failed=failed)


def _files(items: tuple[str, ...]) -> Any:
    for item in items:
        path = Path(item)
        if path.is_dir():
            yield from (p for p in sorted(path.rglob("*")) if p.is_file())
        elif path.is_file():
            yield path
        else:
            raise click.BadParameter(f"no such file or folder: {item}")


TABLE_COLUMNS = {
    DicomLevel.PATIENTS: ("PatientID", "PatientName"),
    DicomLevel.STUDIES: ("StudyDate", "ModalitiesInStudy", "StudyDescription", "AccessionNumber"),
    DicomLevel.SERIES: ("Modality", "SeriesNumber", "SeriesDescription"),
    DicomLevel.INSTANCES: ("Modality", "SeriesNumber", "InstanceNumber", "SOPInstanceUID"),
}


def _print_table(found: list[Dixel], level: DicomLevel) -> None:
    """Id first (whole, never wrapped) and the main tags of the level: what one reads before get/delete."""
    from rich.console import Console
    from rich.table import Table

    columns = TABLE_COLUMNS[level]
    table = Table("ID", *columns, box=None, header_style="bold", pad_edge=False)
    table.columns[0].no_wrap = True
    for dixel in found:
        tags = {**dixel.meta.get("MainDicomTags", {}), **dixel.tags}
        table.add_row(_id_of(dixel), *(str(tags.get(c, "")) for c in columns))
    console = Console()
    if not console.is_terminal:  # piped: no truncation to 80 columns
        console = Console(width=240)
    console.print(table)


def _id_of(dixel: Dixel) -> str:
    if dixel.meta.get("ID"):
        return str(dixel.meta["ID"])
    try:
        return dixel.oid()
    except Exception:  # noqa: BLE001 - an answer without the UIDs to name it: show what identifies it
        return str(dixel.tag("StudyInstanceUID") or dixel.fn or "?")


@click.command("find")
@click.argument("service")
@click.argument("query", nargs=-1)
@click.option("-l", "--level", default="studies", type=LEVELS, show_default=True, help="DICOM level of the ITEMS.")
@click.option("--retrieve", is_flag=True, help="Also retrieve what matched (proxied remotes).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True,
              help="Output: json, jsonl (one line per item), csv, or a table.")
@click.option("--extract", "extract", multiple=True, type=click.Choice(["radcat", "lungrads", "birads"]),
              help="Mine each result's report text (Montage) for these grades. Repeatable.")
@click.option("--ids-only", is_flag=True, help="Print only the ids, one per line (pipe them into get/delete).")
@click.option("-a", "--accessions", metavar="FILE", help="One search per accession number in FILE (.txt: one per "
              "line; .csv: AccessionNumber column); the original's 'mfind -a @FILE'.")
@click.option("--today", is_flag=True, help="Only studies of today (StudyDate=today; Montage: start/end date).")
@pass_state
def find_cmd(state: CliState, service: str, query: tuple[str, ...], level: str, retrieve: bool, fmt: str,
             extract: tuple[str, ...], ids_only: bool, accessions: str | None, today: bool) -> None:
    """Find items in SERVICE matching QUERY terms KEY=VALUE (DICOM keywords; wildcards as the backend allows).

    Example: diana -s services.yml find pacs AccessionNumber=A123 --level studies --format table

    Ids for scripts: diana -s services.yml find pacs StudyDate=20240101 --ids-only | xargs diana delete pacs --yes

    Reports: diana -s services.yml find montage --accessions accessions.txt --extract radcat
    """
    terms = {}
    for term in query:
        key, sep, value = term.partition("=")
        if not sep:
            raise click.BadParameter(f"query term {term!r} must be KEY=VALUE")
        terms[key] = value
    if today:
        from datetime import date

        if "StudyDate" in terms:
            raise click.UsageError("give the study date once: --today or StudyDate=")
        terms["StudyDate"] = date.today().strftime("%Y%m%d")
    lvl = _level(level)
    kwargs: dict[str, Any] = {"level": lvl}
    if retrieve:
        kwargs["retrieve"] = True
    endpoint = state.endpoint(service)
    if accessions:
        found = [d for acc in _accessions(accessions, terms)
                 for d in endpoint.find({**terms, "AccessionNumber": acc}, **kwargs)]
    else:
        found = list(endpoint.find(terms, **kwargs))
    if ids_only:
        ids = [_id_of(d) for d in found if isinstance(d, Dixel)]
        state.emit(ids, "\n".join(ids))
        return
    rendered = [_render(d) if isinstance(d, Dixel) else d for d in found]
    if extract:
        from diana_core.report import RadiologyReport

        for dixel, record in zip(found, rendered, strict=True):
            text = (dixel.report or dixel.meta.get("ReportText")) if isinstance(dixel, Dixel) else None
            if isinstance(record, dict):
                record["extracted"] = RadiologyReport(text or "").extract(*extract)
    if fmt == "table" and not state.json_output and not extract and all(isinstance(d, Dixel) for d in found):
        _print_table(found, _level(level))
        return
    if fmt != "json":
        emit_records(rendered, fmt, state.json_output)
        return
    state.emit(rendered)


def _accessions(path: str, terms: dict[str, str]) -> list[str]:
    from diana_core.usecases.collector import read_worklist, text_worklist

    if "AccessionNumber" in terms:
        raise click.UsageError("give accession numbers once: --accessions FILE or AccessionNumber=")
    path = path[1:] if path.startswith("@") and not Path(path).exists() else path  # the original's "@FILE"
    if not Path(path).is_file():
        raise click.BadParameter(f"no such file: {path}", param_hint="--accessions")
    if path.lower().endswith(".csv"):
        return [str(d.tag("AccessionNumber")) for d in read_worklist(path)]
    return text_worklist(Path(path))  # any other file: one accession number per line (no header to lose)


@click.command("delete")
@click.argument("service")
@click.argument("items", nargs=-1, required=True)
@click.option("-l", "--level", default="studies", type=LEVELS, show_default=True, help="DICOM level of the ITEMS.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
@click.option("--dry-run", is_flag=True, help="Only say which ITEMS are there and would be deleted.")
@pass_state
def delete_cmd(state: CliState, service: str, items: tuple[str, ...], level: str, yes: bool, dry_run: bool) -> None:
    """Delete ITEMS (ids) from SERVICE. On a terminal it asks first (--yes skips the question); --dry-run
    deletes nothing and says which items are there."""
    import sys

    endpoint = state.endpoint(service)
    lvl = _level(level)
    if dry_run:
        there = {item: bool(endpoint.exists(item, level=lvl)) for item in items}
        state.emit({"dry_run": True, "items": there},
                   "\n".join(f"{k}: {'would be deleted' if v else 'not there'}" for k, v in there.items()))
        return
    if not yes and sys.stdin.isatty():
        click.confirm(f"Delete {len(items)} {lvl} from {service}?", abort=True, err=True)
    results = {item: bool(endpoint.delete(item, level=lvl)) for item in items}
    state.emit(results, "\n".join(f"{k}: {'deleted' if v else 'not there'}" for k, v in results.items()))
