"""``diana plugins`` and ``diana check``."""

from __future__ import annotations

from typing import Any

import click

from diana_core.cli.context import CliState, pass_state


@click.command("plugins")
@pass_state
def plugins_cmd(state: CliState) -> None:
    """List installed plugin distributions, their versions and the ctypes/handlers each provides."""
    from diana_core.plugins import get_plugin_manager

    infos = sorted(get_plugin_manager().infos.values(), key=lambda i: (i.name != "core", i.name))
    rows: list[dict[str, Any]] = [
        {"plugin": i.name, "distribution": i.dist, "version": i.version, "ctypes": i.ctypes,
         "handlers": i.handlers, "pixel_cleaners": i.pixel_cleaners, "error": i.error}
        for i in infos
    ]
    if state.json_output:
        state.emit(rows)
        return
    from rich.table import Table

    table = Table("plugin", "distribution", "version", "ctypes", "handlers / status")
    for r in rows:
        status = f"[red]BROKEN: {r['error']}[/red]" if r["error"] else ", ".join(
            r["handlers"] + [f"pixel cleaner {c}" for c in r["pixel_cleaners"]])
        table.add_row(r["plugin"], r["distribution"], r["version"], ", ".join(r["ctypes"]), status)
    from rich.console import Console

    Console().print(table)


@click.command("check")
@click.argument("services", nargs=-1)
@click.option("--report-to", "report_to", default=None,
              help="Also put the results as one event into this service (e.g. a Splunk index): a heartbeat.")
@pass_state
def check_cmd(state: CliState, services: tuple[str, ...], report_to: str | None) -> None:
    """Check that SERVICES (default: every service in the file) answer. Exit 1 if any does not."""
    from diana_core.errors import DianaError

    names = list(services) or list(state.services)
    if not names:
        raise click.UsageError("no services: give -s services.yml (or set DIANA_SERVICES) or name paths")
    from diana_core.ports import Diagnosing

    results, failed = {}, False
    for name in names:
        try:
            endpoint = state.endpoint(name)
            if isinstance(endpoint, Diagnosing):  # says why (refused, DNS, TLS, missing folder...)
                ok, detail = endpoint.diagnose()
            else:
                ok, detail = bool(endpoint.check()), ""
            results[name] = ("ok" if ok else "unavailable") + (f": {detail}" if detail else "")
            failed = failed or not ok
        except DianaError as exc:
            results[name] = f"error: {exc}"
            failed = True
    state.emit(results, "\n".join(f"{k}: {v}" for k, v in results.items()))
    if report_to:
        heartbeat = {"diana_check": results, "ok": not failed}
        state.endpoint(report_to).put(heartbeat)
    if failed:
        raise SystemExit(1)
