"""The CLI surface plugins may use (their ``diana_cli`` commands): state, progress, rendering. Import only this.

- ``CliState`` / ``pass_state``: the top-level options (service file, ``--json``, ``--show-ids``) and ``endpoint(name)``.
- ``progress_bar(description, total, enabled)``: the one progress implementation (rich on a TTY, plain lines off it);
  ``stderr_is_tty()`` tells which one a person is watching.
- ``summary_table(title, rows)``: a two-column summary on stderr; ``state.emit(data, text)`` for stdout.
- ``failure_lines(failures, show_ids)``: console lines for failed items, ids hidden unless ``--show-ids``.
- ``show_ids_option``: ``--show-ids`` after a command's name too (``diana collect ... --show-ids``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from diana_core import redaction
from diana_core.cli.context import CliState, pass_state, stderr_console
from diana_core.cli.logs import stderr_is_tty
from diana_core.cli.render import progress_bar, summary_table


def failure_lines(failures: Mapping[str, str], show_ids: bool = False, report: str | None = None) -> list[str]:
    """One line per failure; item ids (accession numbers are PHI-adjacent) only with ``show_ids``."""
    if show_ids:
        return [f"failed {key}: {reason}" for key, reason in sorted(failures.items())]
    lines = [f"failed: {reason}" for _, reason in sorted(failures.items())]
    if failures:
        where = f" in {report}" if report else ""
        lines.append(f"{len(failures)} failed; ids{where} (or rerun with --show-ids)")
    return lines


def _set_show_ids(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    state = ctx.find_object(CliState)
    if value and state is not None:
        state.show_ids = True
        redaction.show_ids()  # logs, status page and audit trail too


show_ids_option: Any = click.option(
    "--show-ids", is_flag=True, expose_value=False, callback=_set_show_ids,
    help="Name items (accession numbers) in console failure lines (same as 'diana --show-ids ...').")
"""The top-level ``--show-ids`` accepted after the command's name as well."""


__all__ = ["CliState", "failure_lines", "pass_state", "show_ids_option", "progress_bar", "stderr_console", "stderr_is_tty",
           "summary_table"]
