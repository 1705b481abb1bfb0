"""Entry point of diana-dicom-celery: the ``CeleryExecutor`` service kind and the ``diana worker`` command."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from diana_core import hookimpl


@hookimpl
def diana_endpoints(register: Callable[[str, type], None]) -> None:
    """Registers ctype "CeleryExecutor" (imported here so that loading plugins stays cheap)."""
    from diana_celery.executor import CeleryExecutor

    register("CeleryExecutor", CeleryExecutor)


@hookimpl
def diana_cli(cli: Any) -> None:
    """Adds ``diana worker``."""
    from diana_celery.worker import worker_cmd

    cli.add_command(worker_cmd)
