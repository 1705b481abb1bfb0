"""``diana quarantine list|show|clean|release JOB``: review what a job held back for burned-in identifiers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _store(job: str) -> Any:
    from diana_core.quarantine import QuarantineStore

    return QuarantineStore(Path(job) / "quarantine")


def _dest(state: Any, store: Any, service: str | None) -> Any:
    """--dest SERVICE, else the job's destination: its service name, or its folder when it was a DcmDir."""
    from diana_core.services import build_endpoint

    context = store.context()
    name = service or context.get("dest")
    if service or (state is not None and name in state.services):
        return state.endpoint(name)
    if context.get("dest_ctype") == "DcmDir" and context.get("dest_path"):
        return build_endpoint("DcmDir", {"path": context["dest_path"], "anonymizing": True}, name or "dest")
    raise click.UsageError(f"the job's destination {name!r} is not a service here: give --dest SERVICE")


def _command() -> click.Group:
    from diana_core.cli.plugin_api import CliState, pass_state

    @click.group("quarantine")
    def quarantine() -> None:
        """Review instances a job held back because they may show identifying pixels (JOB/quarantine).

        \b
        diana quarantine list JOB                  what waits, was cleaned or released
        diana quarantine show JOB [ID..] --png F   contact sheet, blanked boxes outlined
        diana quarantine clean JOB [ID..]          apply clean-pixels (OCR + known regions) to what waits
        diana quarantine release JOB ID..          send reviewed instances on, pseudonymized like the job
        """

    @quarantine.command("list")
    @click.argument("job", type=click.Path(file_okay=False, exists=True))
    @pass_state
    def list_cmd(state: CliState, job: str) -> None:
        """List the held-back instances of JOB: id, state, boxes blanked, reason (no PHI)."""
        records = _store(job).entries()
        rows = [{"id": r["id"], "state": r["state"], "boxes": len(r.get("boxes", [])), "reason": r["reason"]}
                for r in records]
        text = "\n".join(f"{r['id']}  {r['state']:<8} {r['boxes']:>3} boxes  {r['reason']}" for r in rows)
        state.emit(rows, text or f"nothing quarantined in {job}")

    @quarantine.command("show")
    @click.argument("job", type=click.Path(file_okay=False, exists=True))
    @click.argument("ids", nargs=-1)
    @click.option("--png", type=click.Path(dir_okay=False), help="Where to write the contact sheet (it shows "
                  "identified pixels; default JOB/quarantine/contact-sheet.png, owner-only).")
    @pass_state
    def show_cmd(state: CliState, job: str, ids: tuple[str, ...], png: str | None) -> None:
        """Write a contact sheet of JOB's quarantined instances (or IDS): first frame, blanked boxes in red."""
        from diana_dcmdir.quarantine_sheet import write_sheet

        store = _store(job)
        records = [store.entry(i) for i in ids] if ids else store.entries()
        if not records:
            raise click.ClickException(f"nothing quarantined in {job}")
        out = write_sheet(store, records, png or store.path / "contact-sheet.png")
        state.emit({"contact_sheet": str(out), "instances": len(records)},
                   f"{len(records)} instances on {out}")

    @quarantine.command("clean")
    @click.argument("job", type=click.Path(file_okay=False, exists=True))
    @click.argument("ids", nargs=-1)
    @pass_state
    def clean_cmd(state: CliState, job: str, ids: tuple[str, ...]) -> None:
        """Apply clean-pixels to what waits in JOB's quarantine (or IDS); then show, then release."""
        from diana_dcmdir.quarantine_review import clean_waiting

        results = clean_waiting(_store(job), list(ids) or None)
        state.emit(results, "\n".join(f"{k}: {v}" for k, v in results.items()) or "nothing waits")
        if any(not v.startswith("cleaned") for v in results.values()):
            raise SystemExit(1)

    @quarantine.command("release")
    @click.argument("job", type=click.Path(file_okay=False, exists=True))
    @click.argument("ids", nargs=-1, required=True)
    @click.option("--dest", help="Send to this service instead of the job's destination.")
    @click.option("--as-is", is_flag=True, help="Release entries that were not cleaned (after a person looked).")
    @click.option("--profile", default=None, help="The job's profile, when job.json names a file not found here.")
    @pass_state
    def release_cmd(state: CliState, job: str, ids: tuple[str, ...], dest: str | None, as_is: bool,
                    profile: str | None) -> None:
        """Send reviewed IDS of JOB on to its destination, pseudonymized with the job's profile and key."""
        from diana_dcmdir.quarantine_review import release

        store = _store(job)
        results = release(store, list(ids), _dest(state, store, dest), profile=profile, as_is=as_is)
        state.emit(results, "\n".join(f"{k}: {v}" for k, v in results.items()))
        if any(not v.startswith("released") for v in results.values()):
            raise SystemExit(1)

    return quarantine
