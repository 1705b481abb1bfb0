"""Shared CLI state (service file, verbosity, output mode) and rendering helpers."""

from __future__ import annotations

import json
from typing import Any

import click
from attrs import define, field


@define
class CliState:
    """What the top-level options decided; available to every command as ``ctx.obj``."""

    services_path: str | None = None
    verbose: int = 0
    json_output: bool = False
    log_format: str = "auto"
    show_ids: bool = False
    notify_url: str | None = None
    notify_format: str = "json"
    _services: Any = field(default=None, init=False)
    _notifier: Any = field(default=None, init=False)

    @property
    def services(self) -> Any:
        """The service file, loaded on first use (``-s FILE`` or $DIANA_SERVICES); ``-s`` also takes inline YAML
        (``-s '{pacs: {ctype: Orthanc, host: pacs}}'``) and the original's ``@file.yml``."""
        if self._services is None:
            from diana_core.services import load_services

            self._services = load_services(_services_source(self.services_path))
        return self._services

    def endpoint(self, spec: str) -> Any:
        """A named service, or a folder / .csv path shorthand."""
        from diana_core.services import resolve_endpoint

        return resolve_endpoint(spec, self.services)

    @property
    def notifier(self) -> Any:
        """The ``--notify`` webhook (a no-op Notifier without a URL); see ``diana_core.cli.notify``."""
        if self._notifier is None:
            from diana_core.cli.notify import Notifier

            self._notifier = Notifier(url=self.notify_url, fmt=self.notify_format)
        return self._notifier

    def emit(self, data: Any, text: str | None = None) -> None:
        """Print data as JSON (``--json``) or as text."""
        if self.json_output or text is None:
            from diana_core.serialize import converter  # cattrs: only for commands that print data

            click.echo(json.dumps(converter.unstructure(data), indent=None if self.json_output else 2, default=str))
        else:
            click.echo(text)


def _services_source(spec: str | None) -> Any:
    """A path, or the mapping an inline YAML ``-s`` value describes."""
    import os

    if not spec:
        return spec
    if spec.startswith("@"):
        return spec[1:]
    if os.path.exists(spec) or not (":" in spec or spec.lstrip().startswith("{")):
        return spec
    import yaml

    from diana_core.errors import ConfigError

    try:
        data = yaml.safe_load(spec)
    except yaml.YAMLError as exc:
        raise ConfigError(f"-s is neither a file nor valid inline YAML ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError("inline -s YAML must map service names to descriptions")
    return data


pass_state = click.make_pass_decorator(CliState)


def setup_logging(verbose: int, log_format: str = "auto") -> str:
    """Rich on a TTY, else one plain line per record; ``json`` for log shippers (see ``diana_core.cli.logs``)."""
    from diana_core.cli.logs import setup_logging as _setup

    return _setup(verbose, log_format)


def stderr_console() -> Any:
    """A rich Console on stderr, for progress bars and tables that must not mix with --json output."""
    from rich.console import Console

    return Console(stderr=True)
