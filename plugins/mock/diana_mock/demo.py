"""``diana demo``: the main job end to end on embedded defaults (no servers), or against a configured Orthanc.

mock site -> "PACS" (DcmDir folder, or an Orthanc with --pacs) -> worklist CSV of accession numbers ->
Collector (pseudonymizing) -> "research" DcmDir -> summary table + contact sheet PNG.
"""

from __future__ import annotations

import math
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from diana_core import csvcells
from diana_core.cli.plugin_api import show_ids_option

MARKER = ".diana-demo"  # written into --out: only a folder holding it is ever removed by a later demo


def clear_out_folder(folder: Path) -> None:
    """Remove a previous demo's folder; refuse (ClickException) to touch any folder the demo did not create."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise click.ClickException(f"--out {str(folder)!r} is a file, not a folder")
    if (folder / MARKER).is_file():
        shutil.rmtree(folder)
    elif any(folder.iterdir()):
        raise click.ClickException(f"--out {str(folder)!r} exists and was not made by diana demo: nothing was removed. "
                                   "Choose another folder (or --keep to write into it).")


DEMO_SITE = {
    "name": "Demo General Hospital",
    "max_instances_per_series": 6,
    "services": [
        {"name": "CT", "modality": "CT", "devices": 1, "studies_per_hour": 4},
        {"name": "MR", "modality": "MR", "devices": 1, "studies_per_hour": 2},
        {"name": "CR", "modality": "CR", "devices": 1, "studies_per_hour": 6},
    ],
}


def run_demo(out: Path, studies: int = 6, seed: str = "diana-demo", pacs: Any = None, pool: int = 2,
             progress: Any = None, profile: str | None = None) -> dict[str, Any]:
    """Run the whole demo into ``out`` (``profile``: the de-identification profile, e.g. basic,clean-pixels);
    returns the summary (and raises DianaError on a broken setup)."""
    from diana_core.services import build_endpoint
    from diana_core.usecases.collector import Collector
    from diana_mock.contact_sheet import write_contact_sheet
    from diana_mock.dixels import reset_mock_seed
    from diana_mock.site import MockSite

    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text("made by diana demo: `diana demo --out` may remove this folder\n", encoding="utf-8")
    source = pacs if pacs is not None else build_endpoint("DcmDir", {"path": str(out / "pacs")}, "pacs")
    research = build_endpoint("DcmDir", {"path": str(out / "research"), "anonymizing": True}, "research")

    reset_mock_seed(seed)
    site = MockSite.Factory.create(DEMO_SITE)
    counts = site.run(source, studies=studies, speed=math.inf, start=datetime(2024, 3, 4, 8, 0))
    if counts["failed"]:
        raise click.ClickException(f"mock site could not store {counts['failed']} instances in {source.name}")

    worklist = out / "worklist.csv"
    with worklist.open("w", newline="", encoding="utf-8") as fh:
        writer = csvcells.Writer(fh)
        writer.writerow(["AccessionNumber"])
        writer.writerows([a] for a in counts["accessions"])

    # mock patients only: with no project key the demo pseudonymizes unkeyed (and says so in its summary)
    from diana_core.plugins import check_profile
    from diana_core.pseudonym import Pseudonymizer, load_key

    pseudonymizer = Pseudonymizer(unkeyed=not load_key(), profile=profile)
    check_profile(pseudonymizer.profile)  # clean-pixels without its plugin: refused before anything moves
    result = Collector(pool_size=pool, pseudonymizer=pseudonymizer).run(
        "demo", str(worklist), source, None, research, anonymize=True, job_dir=out / "job", progress=progress)
    sheet = out / "contact-sheet.png"
    shown = write_contact_sheet(out / "research", sheet)
    quarantine_sheet = None
    if result.quarantined or pseudonymizer.report.cleaned:  # held back or cleaned: for a person to look at
        from diana_core.quarantine import QuarantineStore
        from diana_dcmdir.quarantine_sheet import write_sheet

        store = QuarantineStore(out / "job" / "quarantine")
        quarantine_sheet = str(write_sheet(store, store.entries(), store.path / "contact-sheet.png"))
    mappings = 0
    if result.key_file:
        with open(result.key_file, encoding="utf-8") as fh:
            mappings = sum(1 for _ in csvcells.read_dicts(fh))
    return {
        "studies_generated": counts["studies"], "instances_generated": counts["instances"],
        "studies_collected": result.done, "studies_skipped": result.skipped, "studies_failed": len(result.failed),
        "instances_pseudonymized": result.instances - result.quarantined, "pseudonym_mappings": mappings,
        "instances_quarantined": result.quarantined,  # may show burned-in PHI (dose screens, ultrasound)
        "instances_pixels_cleaned": len(pseudonymizer.report.cleaned),  # with --profile ...,clean-pixels
        "quarantine_sheet": quarantine_sheet,
        "series_on_contact_sheet": shown, "seconds": round(time.monotonic() - started, 1),
        "pacs": str(getattr(source, "path", source.name)), "research": str(out / "research"),
        "worklist": str(worklist), "key_file": result.key_file, "contact_sheet": str(sheet),
        "key_id": result.key_id, "deid_report": result.deid_report,
        "failures": result.failed,
    }


@click.command("demo")
@click.option("-o", "--out", default="diana-demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the demo's PACS, research copy, worklist, job files and contact sheet.")
@click.option("-n", "--studies", default=6, show_default=True, type=click.IntRange(1, 200),
              help="How many mock studies the hospital holds.")
@click.option("--seed", default="diana-demo", show_default=True, help="Mock seed: same seed, same studies.")
@click.option("--pacs", help="A service (from -s FILE) to use as the PACS instead of a folder, e.g. an Orthanc.")
@click.option("--pool", default=2, show_default=True, help="Studies collected in parallel.")
@click.option("--keep", is_flag=True, help="Keep an existing --out folder (rerun: collected studies are skipped).")
@click.option("--profile", default=None, metavar="OPTIONS|FILE.yml", help="De-identification profile, e.g. "
              "basic,clean-pixels: dose screens and ultrasound are cleaned (needs diana-dicom[pixels]) instead of "
              "quarantined.")
@show_ids_option
@click.pass_context
def demo_cmd(ctx: click.Context, out: str, studies: int, seed: str, pacs: str | None, pool: int, keep: bool,
             profile: str | None) -> None:
    """Run the main job on embedded defaults: mock PACS -> worklist -> pseudonymized research copy.

    \b
    Generates a small mock hospital (CT, MR, CR) into a PACS folder (or --pacs SERVICE), writes a worklist CSV of
    the accession numbers, collects every study pseudonymized into OUT/research, prints a summary and writes
    OUT/contact-sheet.png (one thumbnail per series) so you can look at what came out.
    Example:  diana demo --out /tmp/demo      |  diana -s services.yml demo --pacs orthanc
    """
    from diana_core.cli.plugin_api import CliState, failure_lines, progress_bar, summary_table

    state = ctx.find_object(CliState)
    folder = Path(out)
    if not keep:
        clear_out_folder(folder)
    source = state.endpoint(pacs) if pacs and state is not None else None
    json_output = bool(state and state.json_output)
    with progress_bar("collect", total=studies, enabled=not json_output) as advance:
        summary = run_demo(folder, studies=studies, seed=seed, pacs=source, pool=pool, profile=profile,
                           progress=lambda outcome, key, counts: advance(done=counts["done"],
                                                                         failed=counts["failed"]))
    failures = summary.pop("failures")
    if json_output:
        click.echo(__import__("json").dumps({**summary, "failures": failures}))
    else:
        summary_table("diana demo", {k: "-" if v is None else v for k, v in summary.items()})
        for line in failure_lines(failures, state.show_ids if state is not None else False):
            click.echo(line, err=True)
        if summary["instances_quarantined"]:
            click.echo(f"{summary['instances_quarantined']} instances held back (may show identifying pixels): see "
                       f"{summary['quarantine_sheet']}; review: diana quarantine list {folder / 'job'}, or run the "
                       "demo with --profile basic,clean-pixels", err=True)
    if failures:
        ctx.exit(1)
