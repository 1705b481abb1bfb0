"""``diana jobs``: look at collection jobs. Each subcommand lives in a module of its own (loaded when used)."""

from __future__ import annotations

import importlib

import click

SUBCOMMANDS = {
    "report": "diana_core.cli.jobs_report:report_cmd",
    "status": "diana_core.cli.jobs_status:status_cmd",
    "purge": "diana_core.cli.jobs_purge:purge_cmd",
    "audit": "diana_core.cli.jobs_audit:audit_cmd",
}


class JobsGroup(click.Group):
    """Subcommands imported on use, so `diana jobs --help` stays fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(SUBCOMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMANDS:
            module, _, attr = SUBCOMMANDS[cmd_name].partition(":")
            return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
        return self.commands.get(cmd_name)


@click.group("jobs", cls=JobsGroup)
def jobs_group() -> None:
    """Collection jobs: where they stand (status), what they did (report), who disclosed what (audit), and
    removing what they left (purge)."""
