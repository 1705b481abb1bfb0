"""Rendering helpers shared by long-running commands: rich progress on stderr and summary tables."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from diana_core.cli.context import stderr_console


@contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar (done/total, rate, ETA) on stderr; yields ``advance(n=1, **fields)``."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Items per minute (studies/min for the collector), once rich has a speed estimate."""

        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed * 60:.1f}/min" if speed else "-/min")

    if not enabled:
        yield lambda n=1, **fields: None
        return
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
        RateColumn(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=stderr_console(),
        transient=False,
    )
    with progress:
        task = progress.add_task(description, total=total, status="")

        def advance(n: int = 1, **fields: Any) -> None:
            status = " ".join(f"{k} {v}" for k, v in fields.items())
            progress.update(task, advance=n, status=status)

        yield advance


def summary_table(title: str, rows: Mapping[str, Any]) -> None:
    """Print a two-column summary table on stderr."""
    from rich.table import Table

    table = Table(title=title, show_header=False)
    for key, value in rows.items():
        table.add_row(str(key), str(value))
    stderr_console().print(table)
