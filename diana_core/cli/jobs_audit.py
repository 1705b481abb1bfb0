"""``diana jobs audit JOB``: print a job's audit trail (text, JSON lines, CSV for an IRB) or verify its hash chain."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from diana_core.cli.context import CliState, pass_state


def audit_option(command: Any) -> Any:
    """``--audit PATH`` for commands that disclose data without a job folder (watch, put, upload, index)."""
    return click.option("--audit", "audit_path", type=click.Path(), default=None, metavar="PATH",
                        help="Audit trail to append to: a job folder or a .jsonl file "
                             "[default: $XDG_STATE_HOME/diana/audit.jsonl].")(command)


@click.command("audit")
@click.argument("job", metavar="JOB", type=click.Path(exists=True))
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl", "csv"]), default="text", show_default=True,
              help="text: one readable line per record; jsonl: the records; csv: one row per record, for an IRB.")
@click.option("--verify", is_flag=True, help="Check the hash chain; exit 1 naming the first broken line.")
@pass_state
def audit_cmd(state: CliState, job: str, fmt: str, verify: bool) -> None:
    """The audit trail of JOB (a job folder, or an audit .jsonl file such as ~/.local/state/diana/audit.jsonl):
    who ran what, from where to where, with which profile and key id, and each study's pseudonymized id,
    instance count and outcome. Identifiers only where the run had --show-ids.

    Example: diana jobs audit jobs/study42 --format csv > study42-disclosures.csv
    """
    from diana_core import audit

    path = Path(job)
    if path.is_dir():
        path = path / audit.AUDIT_FILE
    if not path.is_file():
        raise click.ClickException(f"{job}: no audit trail ({audit.AUDIT_FILE}) there")
    if verify:
        lines, broken = audit.verify(path)
        if broken is not None:
            state.emit({"ok": False, "line": lines, "error": broken}, f"audit trail {path} is broken: {broken}")
            raise SystemExit(1)
        state.emit({"ok": True, "lines": lines}, f"audit trail {path} is intact: {lines} lines chained")
        return
    if fmt == "csv":
        audit.write_csv(path, sys.stdout)
        return
    for n, rec in audit.read(path):
        if fmt == "jsonl" or state.json_output:
            click.echo(json.dumps(rec, sort_keys=True))
        else:
            click.echo(_text(n, rec))


def _text(n: int, rec: dict) -> str:
    head = f"{n:>5} {rec.get('time', '')} {rec.get('event', ''):<6}"
    if rec.get("event") == "start":
        return (f"{head} {rec.get('command')} by {rec.get('user')}@{rec.get('host')}: {rec.get('source')} -> "
                f"{rec.get('dest')} profile {rec.get('profile') or '-'} key {rec.get('key_id') or '-'}; "
                f"{' '.join(rec.get('argv') or [])}")
    if rec.get("event") == "finish":
        return f"{head} " + ", ".join(f"{k} {v}" for k, v in (rec.get("counts") or {}).items())
    extra = " ".join(f"{k} {rec[k]}" for k in ("row", "original", "reason") if k in rec)
    return f"{head} {rec.get('outcome', ''):<8} {rec.get('study') or '-'} {rec.get('instances', 0)} instances {extra}"


def open_trail(path: str | None, command: str, source: Any, dest: Any, anonymize: bool = False,
               profile: str | None = None, unkeyed: bool = False, hide: tuple[str, ...] = (), **facts: Any) -> Any:
    """Start the audit trail of a command without a job folder (``--audit PATH`` or the user's default one)."""
    from diana_core.audit import AuditTrail

    key_id = profile_name = None
    if anonymize:
        from diana_core.pseudonym import Pseudonymizer

        pz = Pseudonymizer(unkeyed=unkeyed, profile=profile)
        key_id, profile_name = pz.key_id, pz.profile.name
    trail = AuditTrail.at(path)
    trail.start(command, source, dest, profile_name, key_id, hide=hide, anonymize=anonymize, **facts)
    return trail
