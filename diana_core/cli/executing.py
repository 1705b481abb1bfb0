"""Options shared by ``collect``, ``index`` and ``upload`` for where the work runs (``--executor``, ``--broker``).

``--executor local`` (default) keeps the in-process pool. ``--executor celery --broker redis://...`` (or a service of
ctype ``CeleryExecutor``, or a service named ``executor`` in the service file) hands units to Celery workers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import click

from diana_core.cli.context import CliState
from diana_core.errors import ConfigError

if TYPE_CHECKING:  # loaded where used: every command's module is imported for --help
    from diana_core.execution import ExecutorProvider

F = Callable[..., Any]


def executor_options(func: F) -> F:
    """Add --executor and --broker to a command."""
    func = click.option("--broker", envvar="DIANA_BROKER", metavar="URL",
                        help="Celery broker for --executor celery, e.g. redis://host:6379/0 (env DIANA_BROKER).")(func)
    return click.option("--executor", "executor_name", metavar="NAME",
                        help="Where units run: local (in-process pool, the default), celery, or a service of ctype "
                             "CeleryExecutor (a service named 'executor' is used when this is not given).")(func)


def executor_provider(state: CliState, name: str | None, broker: str | None) -> ExecutorProvider | None:
    """None for the in-process executor, else the provider named by --executor / the service file."""
    services = state.services
    if name is None:
        name = "executor" if "executor" in services else "celery" if broker else "local"
    if name == "local":
        return None
    if name == "celery" and "celery" not in services:
        if not broker:
            raise click.UsageError("--executor celery needs --broker redis://HOST:PORT/DB (or $DIANA_BROKER)")
        from diana_core.services import build_endpoint

        provider = build_endpoint("CeleryExecutor", {"broker": broker}, service_name="celery")
    else:
        provider = services[name]
        if broker and hasattr(provider, "broker"):
            provider.broker = broker
    from diana_core.execution import ExecutorProvider

    if not isinstance(provider, ExecutorProvider):
        raise ConfigError(f"executor {name!r} is not an executor service (ctype CeleryExecutor); "
                          "install it with: pip install 'diana-dicom[celery]'")
    return provider


def worker_spec(state: CliState, spec: str, provider: ExecutorProvider | None) -> str:
    """A service name as given; a folder / file path made absolute when workers elsewhere must resolve it."""
    import os

    if provider is None or spec in state.services:
        return spec
    return os.path.abspath(spec) if os.path.exists(spec) or os.sep in spec else spec


def provider_limits(provider: ExecutorProvider | None) -> dict[str, Any]:
    """The per-source limits declared in the provider's service entry (``limits: {source: {...}}``)."""
    from diana_core.protection import parse_limits

    return parse_limits(getattr(provider, "limits", None) or {})


def merge_limits(base: Mapping[str, Any], source: str, max_concurrent: int | None, rate: float | None,
                 window: str | None) -> dict[str, Any]:
    """Per-source limits from the provider's service entry, overridden for ``source`` by the command's options."""
    from diana_core.protection import Limits

    limits = dict(base)
    if max_concurrent is None and rate is None and window is None:
        return limits
    old = limits.get(source) or Limits()
    limits[source] = Limits(max_concurrent=old.max_concurrent if max_concurrent is None else max_concurrent,
                            rate=old.rate if rate is None else rate, burst=old.burst,
                            window=old.window if window is None else (window or None))
    return limits


def remember_distributed_job(folder: Any, job: str, service: str) -> None:
    """Note in the job folder (job.json, 0600) which executor service and job id hold the state, for `jobs status`."""
    import json
    import os
    from pathlib import Path

    from diana_core.usecases.jobfiles import private_open

    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    with private_open(path / "job.json", "w") as fh:
        json.dump({"job": job, "executor": "distributed", "service": service}, fh)
