"""The ``diana`` command group: global options, error handling, and plugin-provided subcommands."""

from __future__ import annotations

import sys
from typing import Any

import click

from diana_core import redaction
from diana_core.cli import exit_codes
from diana_core.cli.context import CliState, setup_logging
from diana_core.errors import ConfigError, DianaError

# built-in subcommands: name -> "module:attribute", imported only when used (keeps --help fast)
BUILTIN = {
    "plugins": "diana_core.cli.basic:plugins_cmd",
    "check": "diana_core.cli.basic:check_cmd",
    "get": "diana_core.cli.items:get_cmd",
    "put": "diana_core.cli.items:put_cmd",
    "find": "diana_core.cli.items:find_cmd",
    "delete": "diana_core.cli.items:delete_cmd",
    "guid": "diana_core.cli.ids:guid_cmd",
    "uid": "diana_core.cli.ids:uid_cmd",
    "oid": "diana_core.cli.ids:oid_cmd",
    "key": "diana_core.cli.key:key_cmd",
    "watch": "diana_core.cli.watch:watch_cmd",
    "collect": "diana_core.cli.collect:collect_cmd",
    "index": "diana_core.cli.index:index_cmd",
    "upload": "diana_core.cli.index:upload_cmd",
    "do": "diana_core.cli.do:do_cmd",
    "jobs": "diana_core.cli.jobs:jobs_group",
    "serve": "diana_core.cli.serve:serve_cmd",
    "routes": "diana_core.cli.routes_cmd:routes_group",
}

# long-running commands run under systemd: a ConfigError exits 2 (restarting cannot mend it)
DAEMONS = frozenset({"watch", "worker", "serve"})

# commands that end the start-up collector hold themselves, when their first item is done (diana_core.cli.startup);
# every other command ends it as soon as it is chosen (a daemon must not run with the hold)
SETTLE_THEMSELVES = frozenset({"index", "upload"})

# commands that plugins provide, with the install hint shown when they are missing
PLUGIN_COMMANDS = {
    "demo": "pip install 'diana-dicom[mock,dcmdir]'",
    "mock": "pip install 'diana-dicom[mock]'",
    "worker": "pip install 'diana-dicom[celery]'",
    "export-png": "pip install 'diana-dicom[dcmdir]'",
}


class DianaGroup(click.Group):
    """Loads built-in commands lazily and asks plugins (``diana_cli`` hook) for theirs once."""

    def _add_plugin_commands(self, command: str | None = None) -> None:
        """Ask the plugin declaring ``command`` (else every plugin with commands) to add its commands."""
        from diana_core.plugins import get_plugin_manager

        get_plugin_manager().extend_cli(self, command)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        names = set(self.commands)
        for name, target in BUILTIN.items():
            if _importable(target):
                names.add(name)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SETTLE_THEMSELVES:
            from diana_core.cli.startup import settled

            settled()
        if cmd_name in BUILTIN and _importable(BUILTIN[cmd_name]):
            module, _, attr = BUILTIN[cmd_name].partition(":")
            import importlib

            return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]
        if cmd_name not in self.commands:
            self._add_plugin_commands(cmd_name)
        command = self.commands.get(cmd_name)
        if command is None and cmd_name in PLUGIN_COMMANDS:
            ctx.fail(f"'diana {cmd_name}' comes with a plugin: {PLUGIN_COMMANDS[cmd_name]}")
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DianaError as exc:
            state = ctx.find_object(CliState)
            if state is not None and state.verbose:
                import traceback

                traceback.print_exc()
            click.echo(f"Error: {exc}", err=True)
            # a daemon's bad configuration (service/routes file, missing folder) exits 2 like bad usage: systemd's
            # RestartPreventExitStatus=2 then stops instead of restarting into the same error every 10 s
            ctx.exit(exit_codes.USAGE if isinstance(exc, ConfigError) and ctx.invoked_subcommand in DAEMONS
                     else exit_codes.FAILED)


def _importable(target: str) -> bool:
    import importlib.util

    module = target.partition(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


@click.group(cls=DianaGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("-s", "--services", "services_path", envvar="DIANA_SERVICES", type=click.Path(dir_okay=False),
              help="Service file (YAML or JSON) naming endpoints: {name: {ctype: ..., ...}}. Env: DIANA_SERVICES; "
                   "default: $XDG_CONFIG_HOME/diana/services.yml (~/.config/diana/services.yml) when it exists.")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug) and full tracebacks on error.")
@click.option("--json", "json_output", is_flag=True, help="Machine-readable JSON on stdout.")
@click.option("--log-format", type=click.Choice(["auto", "rich", "plain", "json"]), default="auto", show_default=True,
              envvar="DIANA_LOG_FORMAT", help="Logs on stderr: auto = rich on a terminal, else one plain line per "
              "record (ISO time, level, logger, message); json = one JSON object per line (watch, workers).")
@click.option("--show-ids", is_flag=True, help="Name items (accession numbers) in console failure lines.")
@click.option("--notify", "notify_url", envvar="DIANA_NOTIFY_URL", metavar="URL",
              help="Webhook: a JSON summary (counts, no PHI) when collect ends or fails, or watch dead-letters grow; "
                   "with the apprise extra any Apprise URL too (mailto://, msteams://, slack://, matrix:// ...).")
@click.option("--notify-format", type=click.Choice(["json", "text"]), default="json", show_default=True,
              help='text: {"text": ...} as Slack and Teams incoming webhooks take it.')
@click.version_option(package_name="diana-dicom", prog_name="diana")
@click.pass_context
def cli(ctx: click.Context, services_path: str | None, verbose: int, json_output: bool, log_format: str,
        show_ids: bool, notify_url: str | None, notify_format: str) -> None:
    """Diana: move, find, index, pseudonymize, route and mock DICOM studies.

    \b
    Endpoints are named in a service file (-s services.yml), e.g.:
      pacs:     {ctype: Orthanc, host: pacs.example.org, port: 8042, user: diana, password: ${PACS_PASSWORD}}
      research: {ctype: DcmDir, path: /data/research}
    A folder path or a .csv path can stand in for a service name.

    \b
    Start here:
      diana demo                      run the whole job on embedded defaults (no servers needed)
      diana plugins                   list installed backends and their ctypes
      diana -s services.yml check     check every service answers
    """
    chosen = setup_logging(verbose, log_format)
    redaction.configure(show_ids, key=_project_key)  # read when an id is first hashed
    ctx.obj = CliState(services_path=services_path, verbose=verbose, json_output=json_output, log_format=chosen,
                       show_ids=show_ids, notify_url=notify_url, notify_format=notify_format)
    if notify_url:
        _ = ctx.obj.notifier  # a --notify URL nothing can send to is refused before any work is done


def _project_key() -> str | None:
    """The pseudonym key keys the hashes shown for file names (stable across runs); None: a random one."""
    from diana_core.pseudonym import load_key

    try:
        return load_key()
    except DianaError:  # a bad key file is reported by the command that needs the key, not here
        return None


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="diana", standalone_mode=True)
    except DianaError as exc:  # raised outside a command's invoke (e.g. while loading a plugin command)
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
